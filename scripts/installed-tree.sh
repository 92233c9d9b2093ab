# Sourced by scripts/typecheck and scripts/lint-imports. The top-level folders agents/, streams/
# and dashboards/ are sub-packages of `claimflow` (see [tool.setuptools] in pyproject.toml),
# which tools that find modules by walking folders (mypy, import-linter) cannot see through
# setuptools' editable-install finder. This lays out the installed layout as a tree of
# symlinks in a temporary folder, `$tree` (removed on exit); `$repo` is the repository.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/claimflow"
for entry in "$repo"/claimflow/*; do ln -s "$entry" "$tree/claimflow/"; done
for sub in agents streams dashboards; do ln -s "$repo/$sub" "$tree/claimflow/$sub"; done
