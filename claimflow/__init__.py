"""claimflow: a streaming monitor for the flow of insurance claims."""
