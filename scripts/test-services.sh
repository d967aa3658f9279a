# shellcheck shell=bash
# Sourced by scripts/test: the real services the integration tests drive, started for the run and stopped
# (with everything they left behind) when the script exits, whatever happens. `start_test_services` exports
#   FLYTE_TEST_DOCKER_HOST   unix socket of a Docker Engine (its embedded BuildKit solves the builds)
#   FLYTE_TEST_REGISTRY      host:port of a plain-HTTP OCI registry on loopback
#   FLYTE_TEST_BASE_BUSYBOX  a busybox base image in that registry, by digest
#   FLYTE_TEST_BASE_PYTHON   a Debian bookworm base image with python3 and pip, by digest
#   FLYTE_TEST_WHEELS_URL    a pip --find-links index holding flyte_test_greeting (tests have no internet)
# When FLYTE_TEST_DOCKER_HOST and FLYTE_TEST_REGISTRY are already set and answer, those are reused (a
# developer's long-lived engine): a second dockerd on the same machine must not share the docker0 bridge.
#
# Knobs: FLYTE_TEST_DOCKERD_ARGS (extra dockerd arguments, word-split), FLYTE_TEST_CACHE (default
# /var/cache/flyte-test: the Python root filesystem, ~50 s of debootstrap, is built once and kept there).

FLYTE_TEST_CACHE=${FLYTE_TEST_CACHE:-/var/cache/flyte-test}

services_dir=""        # the run's temporary folder: sockets, logs, data roots, wheels
services_pids=()       # processes this script started, stopped in reverse order
services_bridge=""     # a bridge this script created for its own dockerd
services_remove=()     # further folders to remove on exit (a half-built cache)
base_tar=""            # the root filesystem tar that busybox_rootfs or python_rootfs made
services_ready=""      # set once everything answers: a later failure is the tests', and the engine's log may help

say() { echo "scripts/test: $*" >&2; }

# The helpers below use python3 (already a test requirement) rather than curl, which a fresh machine lacks.

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Exit status 0 when GET URL answers 200.
http_ok() {
    python3 - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
EOF
}

# Exit status 0 when the engine at unix://PATH answers its /_ping with OK.
engine_ok() {
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1].removeprefix("unix://"))
s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
reply = b""
while chunk := s.recv(4096):
    reply += chunk
sys.exit(0 if reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n")[0] and reply.endswith(b"OK") else 1)
EOF
}

# Prints the digest of REGISTRY/REPO:TAG, or nothing when the registry does not have the tag.
manifest_digest() {
    python3 - "$1" "$2" "$3" <<'EOF'
import sys, urllib.error, urllib.request
registry, repo, tag = sys.argv[1:]
accept = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
request = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": accept})
try:
    print(urllib.request.urlopen(request, timeout=10).headers["Docker-Content-Digest"])
except urllib.error.HTTPError as error:
    if error.code != 404:
        raise
EOF
}

# wait_for WHAT SECONDS PID LOG COMMAND...: polls COMMAND until it succeeds; fails with the log's tail
# when PID dies or the time is up, so a broken setup says why instead of hanging.
wait_for() {
    local what=$1 seconds=$2 pid=$3 log=$4 deadline
    shift 4
    deadline=$((SECONDS + seconds))
    until "$@"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "$what exited while starting; the end of $log:"
            tail -n 30 "$log" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "$what did not answer within ${seconds}s; the end of $log:"
            tail -n 30 "$log" >&2
            return 1
        fi
        sleep 0.2
    done
}

# Another dockerd on this machine owns docker0: sharing it makes the two fight over addresses.
other_dockerd_running() {
    local comm
    for comm in /proc/[0-9]*/comm; do
        [ "$(cat "$comm" 2>/dev/null)" = dockerd ] && return 0
    done
    return 1
}

# Creates a bridge of our own (services_bridge) on a /24 that no interface or route uses yet.
own_bridge() {
    local name="fltest$$" n
    for n in $(seq 10 250); do
        if ! ip -4 -o addr show | grep -q " 10\.199\.$n\." && ! ip -4 route show | grep -q "^10\.199\.$n\."; then
            ip link add "$name" type bridge || return 1
            services_bridge=$name
            ip addr add "10.199.$n.1/24" dev "$name" && ip link set "$name" up || return 1
            return 0
        fi
    done
    say "no free 10.199.x.0/24 for the test engine's bridge"
    return 1
}

start_engine() {
    local dir=$services_dir extra=() log="$services_dir/dockerd.log"
    # shellcheck disable=SC2206 # word-splitting the knob is the point
    extra=(${FLYTE_TEST_DOCKERD_ARGS:-})
    if [[ " ${extra[*]} " != *" --bridge"* && " ${extra[*]} " != *" -b "* && " ${extra[*]} " != *" --bip"* ]] &&
        other_dockerd_running; then
        say "another dockerd runs here: giving the test engine a bridge of its own"
        own_bridge || return 1
        extra+=("--bridge=$services_bridge")
    fi
    # No firewall rules (the tests reach nothing outside), but a bridge: RUN steps fail without one.
    dockerd --host "unix://$dir/docker.sock" --data-root "$dir/root" --exec-root "$dir/exec" \
        --pidfile "$dir/pid" --iptables=false --ip-masq=false "${extra[@]}" >"$log" 2>&1 &
    services_pids+=($!)
    wait_for dockerd 60 $! "$log" engine_ok "unix://$dir/docker.sock" || return 1
    export FLYTE_TEST_DOCKER_HOST="unix://$dir/docker.sock"
}

start_registry() {
    local port log="$services_dir/registry.log"
    port=$(free_port)
    cat >"$services_dir/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $services_dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    docker-registry serve "$services_dir/registry.yml" >"$log" 2>&1 &
    services_pids+=($!)
    wait_for docker-registry 30 $! "$log" http_ok "http://127.0.0.1:$port/v2/" || return 1
    export FLYTE_TEST_REGISTRY="127.0.0.1:$port"
}

# A pure-Python wheel written by hand (no pip, no internet): module flyte_test_greeting with greet(name).
make_wheel() {
    python3 - "$1" <<'EOF'
import base64, hashlib, os, sys, zipfile
name, version = "flyte_test_greeting", "1.0"
info = f"{name}-{version}.dist-info"
files = {
    f"{name}.py": 'def greet(name):\n    return f"hello {name}"\n',
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    "Summary: A wheel the flyte tests install offline\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: flyte scripts/test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for path, text in files.items():
    data = text.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{info}/RECORD,,")
files[f"{info}/RECORD"] = "\n".join(record) + "\n"
target = os.path.join(sys.argv[1], f"{name}-{version}-py3-none-any.whl")
with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as wheel:
    for path, text in files.items():
        # A fixed timestamp keeps the wheel's bytes, and so its hash, the same on every run.
        wheel.writestr(zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0)), text)
EOF
}

start_wheel_server() {
    local port log="$services_dir/wheels.log"
    mkdir -p "$services_dir/wheels"
    make_wheel "$services_dir/wheels" || return 1
    port=$(free_port)
    python3 -m http.server --bind 127.0.0.1 --directory "$services_dir/wheels" "$port" >"$log" 2>&1 &
    services_pids+=($!)
    wait_for "the wheel server" 15 $! "$log" http_ok "http://127.0.0.1:$port/" || return 1
    export FLYTE_TEST_WHEELS_URL="http://127.0.0.1:$port/"
}

# The Debian mirror apt is set up with (debootstrap's own default when none is found).
debian_mirror() {
    local sources=/etc/apt/sources.list.d/debian.sources
    if [ -f "$sources" ]; then
        awk '/^URIs:/ { uri = $2 } /^Suites:/ && / bookworm( |$)/ && uri { print uri; exit }' "$sources"
    elif [ -f /etc/apt/sources.list ]; then
        awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list
    fi
}

# The Python base's root filesystem (sets base_tar): debootstrap takes about 50 s, so it is built once per
# machine and kept as a tar. It is written next to its final name and renamed, so a run that is stopped
# half-way never leaves a truncated cache behind.
python_rootfs() {
    local cache="$FLYTE_TEST_CACHE/bookworm-python.tar" work
    base_tar=$cache
    [ -s "$cache" ] && return 0
    say "building the Python base's root filesystem with debootstrap (once per machine, about a minute)"
    mkdir -p "$FLYTE_TEST_CACHE" || return 1
    work=$(mktemp -d "$FLYTE_TEST_CACHE/.partial.XXXXXX") || return 1
    services_remove+=("$work")
    # shellcheck disable=SC2046 # no mirror means debootstrap's default
    if ! debootstrap --variant=minbase --include=python3,python3-pip bookworm "$work/root" \
        $(debian_mirror) >"$work/debootstrap.log" 2>&1; then
        say "debootstrap failed; the end of its log:"
        tail -n 30 "$work/debootstrap.log" >&2
        return 1
    fi
    # The downloaded packages are tens of MB that the image has no use for.
    rm -f "$work"/root/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$work/root" -cf "$work/rootfs.tar" . || return 1
    mv -f "$work/rootfs.tar" "$cache" || return 1
    remove_tree "$work"
}

# A root filesystem holding Debian's static busybox and a link for each of its applets (sets base_tar).
busybox_rootfs() {
    local root="$services_dir/busybox-root" applet
    base_tar="$services_dir/busybox.tar"
    mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" || return 1
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox" || return 1
    for applet in $("$root/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    # A user database, so that `USER root` and tools that look up uid 0 work.
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$base_tar" .
}

# push_base VARIABLE NAME TAG MAKER CMD: unless the registry already has NAME:TAG, runs MAKER (which
# sets base_tar to a root filesystem tar), imports that as a one-layer image and pushes it; then
# exports VARIABLE as NAME by digest.
push_base() {
    local variable=$1 name=$2 tag=$3 maker=$4 cmd=$5 ref digest log="$services_dir/push.log"
    local docker=(env DOCKER_HOST="$FLYTE_TEST_DOCKER_HOST" DOCKER_CONFIG="$services_dir/docker-config" /usr/bin/docker)
    ref="$FLYTE_TEST_REGISTRY/$name"
    digest=$(manifest_digest "$FLYTE_TEST_REGISTRY" "$name" "$tag") || return 1
    if [ -z "$digest" ]; then
        "$maker" || return 1
        # Debian's client (/usr/local/bin/docker may be another), with a config folder of its own so that
        # a user's credential helpers stay out of it.
        if ! "${docker[@]}" import --change "CMD [\"$cmd\"]" \
            --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
            "$base_tar" "$ref:$tag" >"$log" 2>&1 || ! "${docker[@]}" push "$ref:$tag" >>"$log" 2>&1; then
            say "could not import and push $ref:$tag:"
            tail -n 20 "$log" >&2
            return 1
        fi
        digest=$(manifest_digest "$FLYTE_TEST_REGISTRY" "$name" "$tag") || return 1
        [ -n "$digest" ] || { say "the registry has no $ref:$tag after the push"; return 1; }
    fi
    export "$variable=$ref@$digest"
}

prepare_base_images() {
    push_base FLYTE_TEST_BASE_BUSYBOX base/busybox 1 busybox_rootfs sh &&
        push_base FLYTE_TEST_BASE_PYTHON base/python 3.11 python_rootfs python3
}

# Unmounts whatever is still mounted below DIR (deepest first), then removes DIR without crossing into
# another filesystem: a half-stopped engine or debootstrap must never take the host's files with it.
remove_tree() {
    local dir=$1 mount
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    while read -r mount; do
        umount -l "$mount" 2>/dev/null
    done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    rm -rf --one-file-system "$dir"
}

# Stops a process and waits for it; gives it SECONDS to finish cleanly before killing it.
stop_process() {
    local pid=$1 seconds=$2 deadline
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    deadline=$((SECONDS + seconds))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# The exit trap: stops what start_test_services started and removes what it made. Keeps the exit status.
stop_test_services() {
    local status=$? i pid cmdline dir
    set +e
    for ((i = ${#services_pids[@]} - 1; i >= 0; i--)); do
        # dockerd stops its containers and its containerd on SIGTERM; give it the time to.
        stop_process "${services_pids[i]}" 30
    done
    if [ -n "$services_dir" ]; then
        # Anything still running from the run's folder (containerd or a shim after a killed dockerd).
        for cmdline in /proc/[0-9]*/cmdline; do
            pid=${cmdline#/proc/}
            pid=${pid%/cmdline}
            if { tr '\0' ' ' <"$cmdline"; } 2>/dev/null | grep -qF "$services_dir/"; then
                kill -KILL "$pid" 2>/dev/null
            fi
        done
        if [ "$status" -ne 0 ] && [ -n "$services_ready" ] && [ -f "$services_dir/dockerd.log" ]; then
            say "the run failed; the end of the test engine's log:"
            tail -n 15 "$services_dir/dockerd.log" >&2
        fi
    fi
    [ -n "$services_bridge" ] && ip link delete "$services_bridge" 2>/dev/null
    for dir in "$services_dir" "${services_remove[@]}"; do
        remove_tree "$dir"
    done
    exit "$status"
}

start_test_services() {
    trap stop_test_services EXIT
    # Turn signals into an exit, so the EXIT trap runs for them too.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    services_dir=$(mktemp -d /tmp/flyte-test.XXXXXX)
    if [ -n "${FLYTE_TEST_DOCKER_HOST:-}" ] || [ -n "${FLYTE_TEST_REGISTRY:-}" ]; then
        if ! engine_ok "${FLYTE_TEST_DOCKER_HOST:-}" || ! http_ok "http://${FLYTE_TEST_REGISTRY:-}/v2/"; then
            say "FLYTE_TEST_DOCKER_HOST (${FLYTE_TEST_DOCKER_HOST:-unset}) and FLYTE_TEST_REGISTRY" \
                "(${FLYTE_TEST_REGISTRY:-unset}) must both be set and answer; unset both to have this script" \
                "start its own"
            exit 1
        fi
        say "reusing the engine at $FLYTE_TEST_DOCKER_HOST and the registry at $FLYTE_TEST_REGISTRY"
    elif [ "$(id -u)" -ne 0 ]; then
        say "not root, so no dockerd and no registry: the tests that need them skip (and fail under CI);" \
            "set FLYTE_TEST_DOCKER_HOST and FLYTE_TEST_REGISTRY to reuse running ones"
        return 0
    else
        start_engine || exit 1
        start_registry || exit 1
    fi
    prepare_base_images || exit 1
    start_wheel_server || exit 1
    services_ready=1
    say "services: engine $FLYTE_TEST_DOCKER_HOST, registry $FLYTE_TEST_REGISTRY, wheels $FLYTE_TEST_WHEELS_URL"
}
