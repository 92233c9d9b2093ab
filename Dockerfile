# The claimflow image: the worker (default), or any other `claimflow` command.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY claimflow ./claimflow
COPY agents ./agents
COPY streams ./streams
COPY dashboards ./dashboards
RUN pip install --no-cache-dir '.[rocksdb]' && useradd --uid 10001 --create-home claimflow
USER 10001
WORKDIR /home/claimflow
ENV CLAIMFLOW_WEB_BIND=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["claimflow"]
CMD ["worker"]
