# One image for every process of the desk; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
# The locked versions first (their own layer: it changes only when the lock does).
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY consultant ./consultant
COPY workers ./workers
COPY templates ./templates
RUN pip install --no-cache-dir --no-deps -e .
USER nobody
ENV CONSULTANT_DATA_DIR=/tmp/consultant
CMD ["consultant", "run"]
