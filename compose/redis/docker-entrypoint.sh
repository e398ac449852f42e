#!/bin/sh
# Start redis-server as the official image does: protected mode off, so other containers can connect.
set -eu

# `docker run IMAGE --some-option` or `IMAGE some.conf`: run redis-server with them, as upstream does.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
    shift
    conf=""
    if [ "$#" -gt 0 ] && [ "${1%.conf}" != "$1" ]; then conf="$1"; shift; fi
    # Upstream compiles protected mode off; Debian's build keeps it on, which refuses every
    # client outside the container when no password is set. An explicit option still wins.
    case " $* " in
        *" --protected-mode "*) ;;
        *) set -- --protected-mode no "$@" ;;
    esac
    set -- redis-server ${conf:+"$conf"} "$@"
fi

exec "$@"
