# One image for every process of the desk; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY consultant ./consultant
COPY workers ./workers
COPY templates ./templates
RUN pip install --no-cache-dir -e .
USER nobody
ENV CONSULTANT_DATA_DIR=/tmp/consultant
CMD ["consultant", "run"]
