#!/bin/sh
# Start RabbitMQ with the user compose names: RABBITMQ_USER / RABBITMQ_PASSWORD, created on first boot.
set -eu
umask 077
printf 'default_user = %s\ndefault_pass = %s\n' "${RABBITMQ_USER:?set by compose}" \
    "${RABBITMQ_PASSWORD:?set by compose}" >/etc/rabbitmq/conf.d/20-credentials.conf
exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
