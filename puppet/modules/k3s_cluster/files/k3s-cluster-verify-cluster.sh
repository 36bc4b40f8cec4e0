#!/bin/bash
# k3s-cluster-verify-cluster: the whole-cluster check, run on a k3s server as root. Waits until every
# expected node is listed by the cluster exactly once, Ready, with its expected role, or the timeout passes.
# (The seed's CI "verify-cluster" stage; the k3s-cluster Pulumi program checks the same before its `nodes`
# output.)
#
# usage: k3s-cluster-verify-cluster [--expect NAME=ROLE]... [--expect-file FILE] [--timeout SECONDS]
#                                   [--interval SECONDS] [--json]
#   --expect NAME=ROLE   a node the cluster must have; ROLE is server or agent (repeatable)
#   --expect-file FILE   lines "NAME ROLE [CERTNAME]" ('#' comments); default, when no --expect is given:
#                        /var/lib/k3s-cluster/expected-nodes, which the k3s_cluster module writes on sharing
#                        servers from the cluster's records in PuppetDB
#   --timeout SECONDS    how long to wait for every node (default 300; 0 checks once)
#   --interval SECONDS   how often to look again (default 2)
#   --json               print the final result as one JSON document instead of the ✅/❌ lines
#
# The rule, per expected node (name, role), from `k3s kubectl get nodes -o json`:
#   listed 0 times            -> missing
#   listed more than once     -> duplicate
#   role differs              -> wrong-role   (server = the node has label node-role.kubernetes.io/control-plane)
#   Ready condition not True  -> NotReady     (Ready=False or Unknown)
#   else                      -> Ready
# Listed nodes nobody expected are reported (status "unexpected") but do not fail the check.
#
# Output: a ⏳ line when the wait starts and whenever the set of unready nodes changes; at the end one line
# per node — "✅ NAME ROLE: Ready" or "❌ NAME ROLE: missing|duplicate|wrong-role|NotReady (detail)" — and a
# summary line. --json: {"ok":…,"nodes":[{"name","role","status","listed","ready","listed_role"}…],
# "unexpected":[{"name","role","ready"}…],"seconds":…}.
# Exit: 0 every expected node Ready with its role; 1 not within the timeout (or the cluster cannot be read);
# 2 usage.
# The Ruby programs below are single-quoted on purpose (their #{} is Ruby's), hence SC2016. They spell
# non-ASCII characters as \u escapes: under LC_ALL=C Ruby reads a program given with -e as US-ASCII.
# shellcheck disable=SC2016
set -uo pipefail
export LC_ALL=C

expect=()
expect_file=
default_file=/var/lib/k3s-cluster/expected-nodes
timeout=300
interval=2
json=false

usage() {
  [ -n "${1:-}" ] && echo "k3s-cluster-verify-cluster: $1" >&2
  echo "usage: k3s-cluster-verify-cluster [--expect NAME=ROLE]... [--expect-file FILE] [--timeout SECONDS] [--interval SECONDS] [--json]" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case $1 in
    --expect) [ $# -ge 2 ] || usage "$1 needs NAME=ROLE"; expect+=("$2"); shift ;;
    --expect-file) [ $# -ge 2 ] || usage "$1 needs a file"; expect_file=$2; shift ;;
    --timeout) [ $# -ge 2 ] || usage "$1 needs a value"; timeout=$2; shift ;;
    --interval) [ $# -ge 2 ] || usage "$1 needs a value"; interval=$2; shift ;;
    --json) json=true ;;
    -h|--help) usage ;;
    *) usage "unknown argument \"$1\"" ;;
  esac
  shift
done
[[ $timeout =~ ^[0-9]{1,4}$ ]] || usage "--timeout \"$timeout\": must be whole seconds, 0-9999"
if ! [[ $interval =~ ^[0-9]{1,3}(\.[0-9]{1,3})?$ ]] || [[ $interval =~ ^0*(\.0*)?$ ]]; then
  usage "--interval \"$interval\": must be seconds, more than 0"
fi
if [ -z "$expect_file" ] && [ ${#expect[@]} -eq 0 ]; then expect_file=$default_file; fi
if [ -n "$expect_file" ]; then
  [ -r "$expect_file" ] || usage "--expect-file \"$expect_file\": cannot be read (give the nodes with --expect NAME=ROLE)"
  while read -r name role _; do
    [ -z "$name" ] || [[ $name == \#* ]] && continue
    expect+=("$name=$role")
  done < "$expect_file"
fi
[ ${#expect[@]} -gt 0 ] || usage "no node to expect"
for e in "${expect[@]}"; do
  [[ $e =~ ^[A-Za-z0-9.-]+=(server|agent)$ ]] || usage "--expect \"$e\": must be NAME=server or NAME=agent"
done

# One evaluation of the cluster's node list against the expected nodes: prints the verdict as JSON.
evaluate() {
  local listing rc
  listing=$(k3s kubectl get nodes -o json 2>&1); rc=$?
  LISTING=$listing LIST_RC=$rc ruby -rjson -e '
    expected = ARGV.map { |e| e.split("=", 2) }
    nodes = []
    error = nil
    if ENV["LIST_RC"] == "0"
      begin
        nodes = JSON.parse(ENV["LISTING"])["items"].map do |n|
          labels = n.dig("metadata", "labels") || {}
          ready = (n.dig("status", "conditions") || []).find { |c| c["type"] == "Ready" }
          { "name" => n.dig("metadata", "name"), "role" => labels.key?("node-role.kubernetes.io/control-plane") ? "server" : "agent",
            "ready" => ready ? ready["status"] : "Unknown" }
        end
      rescue StandardError => e
        error = "cannot parse the node list: #{e.message}"
      end
    else
      error = "cannot list the nodes: #{ENV["LISTING"].lines.last.to_s.strip}"
    end
    verdicts = expected.map do |name, role|
      seen = nodes.select { |n| n["name"] == name }
      status = if error then "unknown"
               elsif seen.empty? then "missing"
               elsif seen.size > 1 then "duplicate"
               elsif seen[0]["role"] != role then "wrong-role"
               elsif seen[0]["ready"] != "True" then "NotReady"
               else "Ready" end
      { "name" => name, "role" => role, "status" => status, "listed" => seen.size,
        "ready" => seen[0] && seen[0]["ready"], "listed_role" => seen[0] && seen[0]["role"] }
    end
    unexpected = nodes.reject { |n| expected.any? { |name, _| name == n["name"] } }
    puts JSON.generate("ok" => error.nil? && verdicts.all? { |v| v["status"] == "Ready" }, "error" => error,
                       "nodes" => verdicts, "unexpected" => unexpected)' "${expect[@]}"
}

# The nodes not Ready with their role, as "name (status)" words, from a verdict.
unready() {
  ruby -rjson -e 'v = JSON.parse($stdin.read); puts v["error"] || v["nodes"].reject { |n| n["status"] == "Ready" }.map { |n| "#{n["name"]} (#{n["status"]})" }.join(", ")'
}

started=$SECONDS
deadline=$((SECONDS + timeout))
$json || echo "⏳ checking ${#expect[@]} nodes of the cluster: each listed once, Ready, with its role; waiting up to ${timeout} s, looking every ${interval} s"
attempts=0
last=
while :; do
  attempts=$((attempts + 1))
  verdict=$(evaluate)
  if [[ $verdict == *'"ok":true'* ]] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
  now=$(unready <<< "$verdict")
  if ! $json && [ "$now" != "$last" ]; then
    echo "⏳ waiting for: $now ($((SECONDS - started)) s of ${timeout} s)"
    last=$now
  fi
  sleep "$interval"
done
seconds=$((SECONDS - started))

if $json; then
  ruby -rjson -e 'v = JSON.parse($stdin.read); v["seconds"] = Integer(ARGV[0]); v["attempts"] = Integer(ARGV[1]); puts JSON.generate(v)' \
    "$seconds" "$attempts" <<< "$verdict"
else
  ruby -rjson -e '
    v = JSON.parse($stdin.read)
    puts "\u274C #{v["error"]}" if v["error"]
    v["nodes"].each do |n|
      detail = case n["status"]
               when "NotReady" then " (Ready=#{n["ready"]})"
               when "wrong-role" then " (listed as #{n["listed_role"]})"
               when "duplicate" then " (listed #{n["listed"]} times)"
               when "missing" then " (not listed by the cluster)"
               else ""
               end
      puts "#{n["status"] == "Ready" ? "\u2705" : "\u274C"} #{n["name"]} #{n["role"]}: #{n["status"]}#{detail}"
    end
    v["unexpected"].each { |n| puts "\u2795 #{n["name"]} #{n["role"]}: listed by the cluster but not expected (Ready=#{n["ready"]})" }' <<< "$verdict"
  if [[ $verdict == *'"ok":true'* ]]; then
    echo "✅ all ${#expect[@]} expected nodes are Ready with their roles ($attempts attempts, ${seconds} s)"
  else
    echo "❌ not every expected node is Ready with its role after ${seconds} s (timeout ${timeout} s): $(unready <<< "$verdict")"
  fi
fi
[[ $verdict == *'"ok":true'* ]]
