# A stand-in for the official redis:7.0-bookworm image, for machines that
# cannot reach a registry: Debian 12's Redis 7.0 on the same debian:12-slim
# base as deploy/Dockerfile. It runs the compose file's command unchanged
# (redis-server and redis-cli on PATH, user redis, data in /data).
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o redis -g redis -m 0750 /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]
