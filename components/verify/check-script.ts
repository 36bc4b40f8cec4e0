// Generated from puppet/modules/k3s_cluster/files/k3s-cluster-check.sh by
// `npx tsx tests/verify/generate-check-script.ts`: edit the script, not this file.
// Inlined: the ServerToken provider is serialized into Pulumi state and runs where the repository is not.
export const CHECK_SCRIPT = `#!/bin/bash
# k3s-cluster-check: steps 2-7 of the k3s-cluster server check, run on the k3s server itself. The one
# implementation of those steps: the Pulumi program's verifier (components/verify) feeds this text to
# \`bash -s\` over its SSH connection and relays the events; the k3s_cluster Puppet module runs it as a file.
#
# usage: k3s-cluster-check [--data-dir DIR] [--node-name NAME] [--api-port PORT] [--tls-name HOST]
#                          [--timeout SECONDS] [--expected-token-file FILE | --expected-token-stdin] [--events]
#   --data-dir DIR           k3s data dir (default /var/lib/rancher/k3s)
#   --node-name NAME         this server's node name (default: the host name)
#   --api-port PORT          supervisor/API port, always reached at 127.0.0.1 (default 6443)
#   --tls-name HOST          name or address the server certificate must carry (default 127.0.0.1); the
#                            verifier passes the address it reached the server by, as a joining agent checks it
#   --timeout SECONDS        one deadline for all steps, 0-3600, decimals allowed (default 300); 0 checks
#                            each step once without waiting
#   --expected-token-file F  the token the server must have taken; F must be owned by root and not readable
#                            by group or others
#   --expected-token-stdin   the same token, as the first line of standard input
#   --events                 machine-readable events on stdout (below) instead of the ⏳/✅/❌ lines, and stop
#                            as soon as standard input closes (the verifier's SSH channel dropped)
# Runs as root. As another user it checks step 2 and fails step 3 saying why it cannot read root's files
# (sudo -n's refusal when sudo refuses).
#
# Steps, checked in this order on this host, each until it passes or the one deadline passes; a step fails
# at once when waiting cannot help (k3s failed, malformed token, CA mismatch, refused credentials):
#   2 k3s service active     \`systemctl is-active k3s\`
#   3 Node Ready             this node's Ready condition from the API (the admin client certificate in the
#                            data dir; \`k3s kubectl\` costs ~120 ms a call, too slow to check every 100 ms)
#   4 Token available        server/node-token (and server/agent-token when it is a separate token)
#   5 Token format           the full K10<64 hex>::<user>:<password> form, k3s's parse messages
#   6 Authentication         sha256 of /cacerts (or of its root certificate's DER for a bundle) equals the
#                            token's CA hash; only then, pinned to that CA: Basic node:<pw> on /v1-k3s/config,
#                            server:<pw> on /v1-k3s/encrypt/status, node:<agent pw> when separate
#   7 API server accessible  /v1-k3s/readyz answers 200 (asked first by step 6's curl process, after step 6's
#                            own requests: one process start less on the way to a verdict)
# A waiting step is checked again every 0.1 s, and at once when systemd signals a change of k3s.service.
#
# Human output (stdout), one line when a step starts waiting and one when it ends:
#   ⏳ [2/7] k3s service active: waiting up to 300s, checking every 0.1s
#   ✅ [2/7] k3s service active: k3s is active (1 attempt, 4 ms)
# Events (--events, stdout), one per line, fields separated by one space, the detail last:
#   check 1                              protocol version; the check is running
#   wait STEP ATTEMPTS DETAIL            a waiting step's reason changed
#   pass STEP ATTEMPTS MS DETAIL         a step passed (MS since it started)
#   fail STEP ATTEMPTS MS DETAIL         a step failed; nothing follows but \`end\`
#   (events are written when the check pauses or ends, so several can arrive together: MS is the timing)
#   token TOKEN / agent-token TOKEN      the tokens step 4 read (only here: this stream is the verifier's
#                                        SSH channel); agent-token only when separate
#   ca-hash HASH                         the CA hash step 6 pinned
#   end CODE                             the exit code that follows
# Exit: 0 every step passed; 1 a step failed (at once or at the deadline); 2 usage; 3 stopped (standard
# input closed in --events mode, or a signal).
#
# Secrets never reach a command line, the environment, a file or stderr: tokens live in shell variables,
# credentials reach curl as a config on its standard input. The only file written is the server's public CA
# (/cacerts), in a private temporary directory removed on exit.

# The steps are called through run_step's "$fn", which shellcheck takes for unreachable code.
# shellcheck disable=SC2317
set -uo pipefail
export LC_ALL=C

readonly TICK=0.1 TICK_MS=100
readonly STEP_NAMES=("" "SSH connectivity" "k3s service active" "Node Ready" "Token available" "Token format"
  "Authentication" "API server accessible")

data_dir=/var/lib/rancher/k3s
node_name=
api_port=6443
tls_name=127.0.0.1
timeout_ms=300000
expected_token_file=
expected_from_stdin=false
events=false

token=
agent_token=
expected_token=
ca_hash=
tmp=
helper_pid=
wake_fd=
detail=

usage() {
  [ -n "\${1:-}" ] && echo "k3s-cluster-check: $1" >&2
  echo "usage: k3s-cluster-check [--data-dir DIR] [--node-name NAME] [--api-port PORT] [--tls-name HOST] [--timeout SECONDS] [--expected-token-file FILE | --expected-token-stdin] [--events]" >&2
  exit 2
}

now_ms() {
  local us=\${EPOCHREALTIME/./}
  REPLY=$((10#$us / 1000))
}

cleanup() {
  if [ -n "$helper_pid" ]; then
    kill "$helper_pid" 2>/dev/null
    wait "$helper_pid" 2>/dev/null
  fi
  [ -n "$tmp" ] && rm -rf "$tmp"
}

finish() {
  cleanup
  if $events; then out_buf+="end $1"$'\\n'; flush; fi
  trap - EXIT
  exit "$1"
}

# Events wait in out_buf until the check pauses or ends, then leave in one write: sshd sends an exec
# session's output with Nagle's algorithm on, so a second small write soon after a first one can be held
# until the verifier's delayed ACK (up to ~40 ms). Human lines are written at once.
out_buf=
emit() {
  if $events; then out_buf+=$1$'\\n'; else printf '%s\\n' "$1" 2>/dev/null || stop_now; fi
}

flush() {
  [ -n "$out_buf" ] || return 0
  printf '%s' "$out_buf" 2>/dev/null || stop_now
  out_buf=
}

# stdout closed: the verifier is gone.
stop_now() {
  out_buf=
  cleanup
  trap - EXIT
  exit 3
}

one_line() {
  local s=\${1//$'\\r'/ }
  REPLY=\${s//$'\\n'/ }
}

trim() {
  local s=$1
  s=\${s#"\${s%%[![:space:]]*}"}
  REPLY=\${s%"\${s##*[![:space:]]}"}
}

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --data-dir) [ $# -ge 2 ] || usage "$1 needs a value"; data_dir=\${2%/}; shift ;;
      --node-name) [ $# -ge 2 ] || usage "$1 needs a value"; node_name=$2; shift ;;
      --api-port) [ $# -ge 2 ] || usage "$1 needs a value"; api_port=$2; shift ;;
      --tls-name) [ $# -ge 2 ] || usage "$1 needs a value"; tls_name=$2; shift ;;
      --timeout)
        [ $# -ge 2 ] || usage "$1 needs a value"
        [[ $2 =~ ^([0-9]{1,4})(\\.([0-9]{1,3})[0-9]*)?$ ]] || usage "--timeout \\"$2\\": must be a number of seconds"
        local frac=\${BASH_REMATCH[3]}000
        timeout_ms=$((10#\${BASH_REMATCH[1]} * 1000 + 10#\${frac:0:3}))
        [ "$timeout_ms" -le 3600000 ] || usage "--timeout \\"$2\\": must be at most 3600 seconds"
        shift ;;
      --expected-token-file) [ $# -ge 2 ] || usage "$1 needs a value"; expected_token_file=$2; shift ;;
      --expected-token-stdin) expected_from_stdin=true ;;
      --events) events=true ;;
      -h|--help) usage ;;
      *) usage "unknown argument \\"$1\\"" ;;
    esac
    shift
  done
  [[ $data_dir == /* ]] || usage "--data-dir \\"$data_dir\\": must be an absolute path"
  if ! [[ $api_port =~ ^[0-9]{1,5}$ ]] || [ "$api_port" -lt 1 ] || [ "$api_port" -gt 65535 ]; then
    usage "--api-port \\"$api_port\\": must be a port number 1-65535"
  fi
  [[ -z $node_name || $node_name =~ ^[A-Za-z0-9._-]+$ ]] || usage "--node-name \\"$node_name\\": not a node name"
  [[ $tls_name =~ ^[A-Za-z0-9.:_-]+$ ]] || usage "--tls-name \\"$tls_name\\": not a host name or address"
  if [ -n "$expected_token_file" ] && $expected_from_stdin; then
    usage "--expected-token-file and --expected-token-stdin exclude each other"
  fi
}

read_expected_token() {
  if $expected_from_stdin; then
    IFS= read -r expected_token || [ -n "$expected_token" ] || usage "--expected-token-stdin: standard input ended before a token"
  elif [ -n "$expected_token_file" ]; then
    local owner_mode
    owner_mode=$(stat -L -c '%u %a' -- "$expected_token_file" 2>/dev/null) ||
      usage "--expected-token-file \\"$expected_token_file\\": cannot be read"
    [[ $owner_mode =~ ^0\\ [0-7]?[0-7]00$ ]] ||
      usage "--expected-token-file \\"$expected_token_file\\": must be owned by root and not readable by group or others (is uid/mode $owner_mode)"
    IFS= read -r -d '' expected_token <"$expected_token_file"
  fi
  trim "$expected_token"; expected_token=$REPLY
  if { $expected_from_stdin || [ -n "$expected_token_file" ]; } && [ -z "$expected_token" ]; then
    usage "the expected token is empty"
  fi
}

# --- waiting ------------------------------------------------------------------------------------------

# Wakes the wait below when systemd announces a change of k3s.service (systemd only sends these while some
# client subscribed, as logind does); without it, waits are plain 0.1 s ticks. Best effort, root only.
start_unit_watch() {
  [ "$EUID" -eq 0 ] && command -v busctl >/dev/null || return 0
  local seconds=$(((timeout_ms + 999) / 1000 + 1))
  # \`timeout\`: even a watcher whose parent was killed outright is gone after the deadline.
  exec {wake_fd}< <(exec timeout "$seconds" busctl monitor --system --json=short \\
    --match="type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1/unit/k3s_2eservice'" \\
    </dev/null 2>/dev/null)
  helper_pid=$!
}

# Sleeps one tick (less when the deadline is nearer), returning early on a k3s unit change. In --events
# mode, a closed standard input ends the check: the verifier is gone.
pause() {
  local left_ms=$1 secs line
  flush
  [ "$left_ms" -gt "$TICK_MS" ] && left_ms=$TICK_MS
  [ "$left_ms" -lt 1 ] && left_ms=1
  printf -v secs '0.%03d' "$left_ms"
  if [ -n "$wake_fd" ]; then
    if IFS= read -r -t "$secs" -u "$wake_fd" line; then
      # Drain what else arrived with this change (systemd signals it per interface); one check follows.
      while read -r -t 0 -u "$wake_fd"; do IFS= read -r -u "$wake_fd" line || break; done
    elif [ $? -le 128 ]; then
      wake_fd=   # the watch ended (deadline of its own, or no bus): plain ticks from now on
    fi
    $events && stdin_closed && finish 3
    return 0
  fi
  if $events; then
    # Standard input doubles as the clock: its end arrives at once, else the tick passes (lines are ignored).
    IFS= read -r -t "$secs" line
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -le 128 ]; then finish 3; fi
    return 0
  fi
  sleep "$secs"
}

stdin_closed() {
  local line
  read -r -t 0 || return 1               # nothing pending: still open
  IFS= read -r -t 0.001 line && return 1 # a line, ignored
  return 0                               # end of input
}

# --- helpers for the steps -----------------------------------------------------------------------------

# Whether this process can read root's files; otherwise sets detail to a final reason naming $1.
need_root() {
  [ "$EUID" -eq 0 ] && return 0
  local why
  why=$(sudo -n true 2>&1 </dev/null | grep -m1 '^sudo:')
  if [ -n "$why" ]; then
    detail="cannot $1: sudo -n refused ($why)"
  else
    detail="cannot $1: not running as root (run it as root, or with sudo)"
  fi
  return 1
}

conf_quote() {
  local s=\${1//\\\\/\\\\\\\\}
  REPLY="\\"\${s//\\"/\\\\\\"}\\""
}

# curl with its options as a config on stdin: a password never reaches a command line. One argument per
# request, run in order by one curl process. Sets codes[], rcs[], errs[] per request, http_code, curl_rc
# and curl_err for the first, and body to what the requests wrote on stdout.
readonly MARK='#k3s-cluster-check# '
curl_run() {
  local max_s common cfg='' t out line rest e b=''
  now_ms; max_s=$(((deadline_ms - REPLY) / 1000 + 1))
  [ "$max_s" -gt 10 ] && max_s=10
  [ "$max_s" -lt 2 ] && max_s=2
  common="silent
noproxy = \\"*\\"
connect-timeout = 2
max-time = $max_s
write-out = \\"\\\\n$MARK%{http_code} %{exitcode} %{errormsg}\\\\n\\""
  for t in "$@"; do
    [ -n "$cfg" ] && cfg+=$'next\\n'
    cfg+=$common$'\\n'$t$'\\n'
  done
  out=$(curl -q -K - <<<"$cfg")
  codes=() rcs=() errs=()
  while IFS= read -r line; do
    if [[ $line == "$MARK"* ]]; then
      rest=\${line#"$MARK"}
      codes+=("\${rest%% *}")
      rest=\${rest#* }
      rcs+=("\${rest%% *}")
      e=\${rest#* }
      [ "$e" = "$rest" ] && e=''
      errs+=("$e")
    else
      b+=$line$'\\n'
    fi
  done <<<"$out"
  body=\${b%$'\\n'}
  http_code=\${codes[0]:-000} curl_rc=\${rcs[0]:-} curl_err=\${errs[0]:-}
  [[ $http_code =~ ^[0-9]{3}$ ]] || http_code=000
}

url_host() {
  if [[ $tls_name == *:* ]]; then REPLY="[$tls_name]"; else REPLY=$tls_name; fi
}

# A request to the local supervisor as the node's clients make it: the URL names --tls-name, the connection
# goes to 127.0.0.1, TLS pinned to the CA step 6 fetched.
pinned_config() {   # PATH [USER PASSWORD]
  url_host
  local cfg="url = \\"https://$REPLY:$api_port$1\\"
connect-to = \\"::127.0.0.1:$api_port\\""
  conf_quote "$tmp/cacerts"; cfg+=$'\\n'"cacert = $REPLY"
  if [ $# -ge 3 ]; then
    conf_quote "$2:$3"
    cfg+=$'\\n'"user = $REPLY"
  fi
  REPLY=$cfg
}

status_field() {   # JSON_TEXT FIELD: a string field of a Kubernetes Status body, unescaped
  REPLY=
  [[ $1 =~ \\"$2\\":\\ *\\"((\\\\.|[^\\"\\\\])*)\\" ]] || return 0
  local v=\${BASH_REMATCH[1]//\\\\\\"/\\"}
  REPLY=\${v//\\\\\\\\/\\\\}
}

# k3s's token grammar and messages (pkg/clientaccess/token.go). Sets tk_kind (secure|bootstrap|short),
# tk_hash, tk_user, tk_password; returns 1 with detail set to k3s's message when the text does not parse.
parse_token() {
  local t=$1 creds
  tk_kind='' tk_hash='' tk_user='' tk_password=
  if [ -z "$t" ]; then detail="token must not be empty"; return 1; fi
  if [[ $t != K10* ]]; then
    tk_kind=short
    if [[ $t == *:* ]]; then tk_user=\${t%%:*}; tk_password=\${t#*:}; else tk_password=$t; fi
    return 0
  fi
  if [[ $t != *::* ]]; then detail="invalid token format"; return 1; fi
  tk_hash=\${t:3}
  tk_hash=\${tk_hash%%::*}
  if [ "\${#tk_hash}" -ne 64 ]; then detail="invalid token CA hash length"; return 1; fi
  if ! [[ $tk_hash =~ ^[0-9a-f]{64}$ ]]; then detail="invalid token format"; return 1; fi
  creds=\${t#*::}
  if [[ $creds =~ ^[a-z0-9]{6}\\.[a-z0-9]{16}$ ]]; then tk_kind=bootstrap; tk_password=$creds; return 0; fi
  if [[ $creds != ?*:?* ]]; then detail="invalid token format"; return 1; fi
  tk_kind=secure tk_user=\${creds%%:*} tk_password=\${creds#*:}
}

# --- the steps: each returns 0 passed, 1 not yet (wait and check again), 2 failed for good -------------

step_service() {
  local state
  state=$(systemctl is-active k3s 2>/dev/null </dev/null)
  case $state in
    active) detail="k3s is active"; return 0 ;;
    # With Restart=always a crashing k3s shows "activating (auto-restart)"; "failed" means systemd gave up.
    failed) detail="k3s service failed (systemctl is-active k3s: failed)"; return 2 ;;
    *) detail="k3s service is \${state:-unknown}"; return 1 ;;
  esac
}

step_node_ready() {
  if [ -z "$node_name" ]; then
    node_name=\${HOSTNAME:-}
    if [ -z "$node_name" ]; then detail="cannot read the server's hostname"; return 1; fi
  fi
  local tls=$data_dir/server/tls
  need_root "read the admin client key $tls/client-admin.key" || return 2
  if [ ! -r "$tls/client-admin.key" ] || [ ! -r "$tls/server-ca.crt" ]; then
    detail="node $node_name Ready=? (no admin client certificate in $tls yet)"
    return 1
  fi
  local files
  conf_quote "$tls/server-ca.crt"; files="cacert = $REPLY"
  conf_quote "$tls/client-admin.crt"; files+=$'\\n'"cert = $REPLY"
  conf_quote "$tls/client-admin.key"; files+=$'\\n'"key = $REPLY"
  curl_run "url = \\"https://127.0.0.1:$api_port/api/v1/nodes/$node_name\\"
header = \\"Accept: application/json\\"
$files"
  local status=
  if [ "$http_code" = 200 ] && [[ $body =~ \\{[^{}]*\\"type\\":\\ *\\"Ready\\"[^{}]*\\} ]] &&
    [[ \${BASH_REMATCH[0]} =~ \\"status\\":\\ *\\"([A-Za-z]+)\\" ]]; then
    status=\${BASH_REMATCH[1]}
  fi
  if [ "$status" = True ]; then detail="node $node_name is Ready"; return 0; fi
  if [ "$http_code" = 200 ]; then detail="node $node_name Ready=\${status:-?}"; return 1; fi
  # The reasons in kubectl's words, so the message reads as it did when this step ran kubectl.
  local why
  if [ "$curl_rc" = 7 ]; then
    why="The connection to the server 127.0.0.1:$api_port was refused - did you specify the right host or port?"
  elif [ "$http_code" = 000 ]; then
    why="Unable to connect to the server: $curl_err"
  else
    status_field "$body" reason; local reason=\${REPLY:-HTTP $http_code}
    status_field "$body" message
    why="Error from server ($reason): \${REPLY:-HTTP $http_code}"
  fi
  detail="node $node_name Ready=? ($why)"
  return 1
}

read_token_file() {   # PATH -> REPLY (trimmed; empty when missing)
  REPLY=
  [ -r "$1" ] || return 0
  local text=
  IFS= read -r -d '' text <"$1"
  trim "$text"
}

step_token() {
  local path=$data_dir/server/node-token
  need_root "read $path" || return 2
  read_token_file "$path"
  if [ -z "$REPLY" ]; then detail="$path is missing or empty"; return 1; fi
  token=$REPLY
  read_token_file "$data_dir/server/agent-token"
  agent_token=
  [ -n "$REPLY" ] && [ "$REPLY" != "$token" ] && agent_token=$REPLY
  detail="$path present (\${#token} characters)\${agent_token:+, separate agent token}"
  return 0
}

server_password=
server_hash=
agent_password=
step_format() {
  if ! parse_token "$token"; then detail="token is not valid: $detail"; return 2; fi
  if [ "$tk_kind" != secure ]; then
    detail="token is not in the full K10<hash>::<user>:<password> form; a \${#token}-character token carries no CA hash and cannot pin the cluster CA"
    return 2
  fi
  server_hash=$tk_hash server_password=$tk_password
  local user=$tk_user
  if [ -n "$agent_token" ]; then
    if ! parse_token "$agent_token"; then detail="agent token is not valid: $detail"; return 2; fi
    if [ "$tk_kind" = short ]; then detail="agent token is not valid: no CA hash: cannot pin the cluster CA"; return 2; fi
    if [ "$tk_hash" != "$server_hash" ]; then detail="agent token names a different cluster CA than the server token"; return 2; fi
    agent_password=$tk_password
  fi
  detail="full form, CA hash \${server_hash:0:12}…, user $user"
  return 0
}

# 0 on 200; else detail set, 2 for a refusal waiting cannot change, 1 otherwise.
auth_check() {   # WHAT
  case $http_code in
    200) return 0 ;;
    401) detail="$1: 401 Unauthorized (wrong password)"; return 2 ;;
    403) detail="$1: 403 Forbidden (credentials not accepted for this role)"; return 2 ;;
  esac
  if [ "$http_code" = 000 ] && [[ $curl_rc =~ ^(35|51|58|60|77|83|90|91)$ ]]; then
    detail="TLS check against the pinned CA failed: $curl_err"
    return 2
  fi
  if [ "$http_code" = 000 ]; then detail="$1: no answer from 127.0.0.1:$api_port ($curl_err)"; else detail="$1: HTTP $http_code"; fi
  return 1
}

ca_hashes() {   # FILE -> REPLY: "hash-of-bytes [hash-of-root-DER]"
  local h pems last rest
  h=$(sha256sum <"$1") || return 1
  REPLY=\${h%% *}
  local text='' begin='-----BEGIN CERTIFICATE-----'
  IFS= read -r -d '' text <"$1"
  rest=\${text//"$begin"/}
  pems=$(((\${#text} - \${#rest}) / \${#begin}))
  if [ "$pems" -gt 1 ]; then
    # k3s hashes a bundle's root (last) certificate, DER-encoded.
    last=$(awk '/-----BEGIN CERTIFICATE-----/ { n++ } n == c' c="$pems" "$1" | openssl x509 -outform DER 2>/dev/null | sha256sum)
    REPLY+=" \${last%% *}"
  fi
}

step_auth() {
  url_host
  local url="url = \\"https://$REPLY:$api_port/cacerts\\""
  conf_quote "$tmp/cacerts"
  curl_run "$url
connect-to = \\"::127.0.0.1:$api_port\\"
insecure
output = $REPLY"
  if [ "$http_code" != 200 ]; then
    if [ "$http_code" = 000 ]; then detail="GET /cacerts: no answer from 127.0.0.1:$api_port ($curl_err)"; else detail="GET /cacerts: HTTP $http_code"; fi
    return 1
  fi
  ca_hashes "$tmp/cacerts" || { detail="cannot hash the served CA"; return 1; }
  local hashes=" $REPLY "
  if [[ $hashes != *" $server_hash "* ]]; then
    local served=\${REPLY##* }
    detail="token CA hash does not match the Cluster CA certificate hash: $server_hash != $served (wrong cluster or a man in the middle)"
    return 2
  fi
  if [ "$ca_hash" != "$server_hash" ]; then
    ca_hash=$server_hash
    $events && emit "ca-hash $ca_hash"
  fi
  if [ -n "$expected_token" ]; then
    if ! parse_token "$expected_token"; then detail="the expected token is not valid: $detail"; return 2; fi
    if [ -n "$tk_hash" ] && [ "$tk_hash" != "$server_hash" ]; then detail="the expected token names a different cluster CA than the server's"; return 2; fi
    if [ "$tk_password" != "$server_password" ]; then detail="the server's token is not the expected token (passwords differ)"; return 2; fi
  fi
  # One curl process for all credential checks (each process costs ~15 ms), judged in order.
  local whats=("GET /v1-k3s/config as node" "GET /v1-k3s/encrypt/status as server") reqs=() rc i n
  pinned_config /v1-k3s/config node "$server_password"; reqs+=("$REPLY"$'\\noutput = "/dev/null"')
  pinned_config /v1-k3s/encrypt/status server "$server_password"; reqs+=("$REPLY"$'\\noutput = "/dev/null"')
  if [ -n "$agent_token" ]; then
    whats+=("agent token: GET /v1-k3s/config as node")
    pinned_config /v1-k3s/config node "$agent_password"; reqs+=("$REPLY"$'\\noutput = "/dev/null"')
  fi
  # The same process then asks step 7's question, after these, saving step 7 a curl process of its own.
  n=\${#reqs[@]}
  pinned_config /v1-k3s/readyz node "$server_password"; reqs+=("$REPLY")
  curl_run "\${reqs[@]}"
  for i in "\${!whats[@]}"; do
    http_code=\${codes[i]:-000} curl_rc=\${rcs[i]:-0} curl_err=\${errs[i]:-}
    auth_check "\${whats[i]}"; rc=$?; [ "$rc" -eq 0 ] || return "$rc"
  done
  readyz_answer=("\${codes[n]:-000}" "\${rcs[n]:-}" "\${errs[n]:-}" "$body")
  detail="CA pinned (sha256 \${server_hash:0:12}…), node and server credentials accepted\${agent_token:+, agent token accepted}"
  return 0
}

readyz_answer=()
step_api() {
  if [ "\${#readyz_answer[@]}" -eq 4 ]; then
    http_code=\${readyz_answer[0]} curl_rc=\${readyz_answer[1]} curl_err=\${readyz_answer[2]} body=\${readyz_answer[3]}
    readyz_answer=()
  else
    pinned_config /v1-k3s/readyz node "$server_password"; curl_run "$REPLY"
  fi
  if [ "$http_code" = 200 ]; then detail="GET /v1-k3s/readyz: 200 ok"; return 0; fi
  if [ "$http_code" = 401 ] || [ "$http_code" = 403 ]; then auth_check "GET /v1-k3s/readyz"; return $?; fi
  if [ "$http_code" = 000 ]; then detail="GET /v1-k3s/readyz: no answer from 127.0.0.1:$api_port ($curl_err)"; return 1; fi
  trim "\${body:0:80}"
  detail="GET /v1-k3s/readyz: HTTP $http_code $REPLY"
  detail=\${detail% }
  return 1
}

# --- main ------------------------------------------------------------------------------------------------

plural() { if [ "$1" -eq 1 ]; then REPLY="$1 attempt"; else REPLY="$1 attempts"; fi; }

run_step() {   # N FUNCTION
  local n=$1 fn=$2 attempts=0 started rc last_wait='' left
  now_ms; started=$REPLY
  if ! $events; then
    left=$(((deadline_ms - started + 500) / 1000)); [ "$left" -lt 0 ] && left=0
    emit "⏳ [$n/7] \${STEP_NAMES[n]}: waiting up to \${left}s, checking every \${TICK}s"
  fi
  for (( ; ; )); do
    attempts=$((attempts + 1))
    detail=
    "$fn"; rc=$?
    one_line "$detail"; detail=$REPLY
    now_ms; local now=$REPLY ms=$((REPLY - started))
    if [ "$rc" -eq 1 ] && [ "$now" -ge "$deadline_ms" ]; then
      detail="timed out after $(((ms + 500) / 1000)) s: $detail"
      rc=2
    fi
    if [ "$rc" -ne 1 ]; then
      local word=pass mark=✅
      [ "$rc" -eq 0 ] || { word=fail mark=❌; }
      if $events; then
        if [ "$rc" -eq 0 ] && [ "$n" -eq 4 ]; then
          emit "token $token"
          [ -n "$agent_token" ] && emit "agent-token $agent_token"
        fi
        emit "$word $n $attempts $ms $detail"
      else
        plural "$attempts"
        emit "$mark [$n/7] \${STEP_NAMES[n]}: $detail ($REPLY, $ms ms)"
      fi
      return "$rc"
    fi
    if $events && [ "$detail" != "$last_wait" ]; then
      emit "wait $n $attempts $detail"
      last_wait=$detail
    fi
    pause $((deadline_ms - now))
  done
}

main() {
  parse_args "$@"
  read_expected_token
  trap 'finish 3' HUP INT TERM
  trap cleanup EXIT
  now_ms; deadline_ms=$((REPLY + timeout_ms))
  tmp=$(mktemp -d "\${TMPDIR:-/tmp}/k3s-cluster-check.XXXXXX") || { echo "k3s-cluster-check: cannot create a temporary directory" >&2; exit 1; }
  start_unit_watch
  # A write to a closed stdout then fails (emit stops the check) instead of killing bash before cleanup.
  # Set after the watch starts, which must keep dying of SIGPIPE once nobody reads it.
  trap '' PIPE
  $events && emit "check 1"
  local n=2 fn
  for fn in step_service step_node_ready step_token step_format step_auth step_api; do
    run_step "$n" "$fn" || finish 1
    n=$((n + 1))
  done
  finish 0
}

# On the same line: were main ever to return, bash -s must not read what follows on stdin as commands.
main "$@"; exit 1
`;
