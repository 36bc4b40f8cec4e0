#!/usr/bin/env bats
# The whole-cluster check (files/k3s-cluster-verify-cluster.sh, $VERIFY) against a `k3s kubectl get nodes -o json`
# that answers from a file the test writes (the real one runs on the simulator in the end-to-end suite).

setup() {
  export WORK=$(mktemp -d)
  mkdir -p "$WORK/bin"
  cat > "$WORK/bin/k3s" <<FAKE
#!/bin/sh
[ "\$*" = "kubectl get nodes -o json" ] || { echo "unexpected: \$*" >&2; exit 9; }
if [ -e "$WORK/refused" ]; then echo "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?" >&2; exit 1; fi
# After 'later' exists, the later listing (a node turning Ready meanwhile).
if [ -e "$WORK/later" ] && [ -e "$WORK/nodes-later.json" ]; then cat "$WORK/nodes-later.json"; else cat "$WORK/nodes.json"; fi
FAKE
  chmod +x "$WORK/bin/k3s"
  export PATH="$WORK/bin:$PATH"
}

teardown() { rm -rf "$WORK"; }

node() { # name role Ready-status
  local labels='{}'
  [ "$2" = server ] && labels='{"node-role.kubernetes.io/control-plane":"true","node-role.kubernetes.io/etcd":"true"}'
  printf '{"metadata":{"name":"%s","labels":%s},"status":{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"%s"}]}}' "$1" "$labels" "$3"
}

nodes() { # file node...
  local file=$1; shift
  local IFS=,
  printf '{"apiVersion":"v1","kind":"List","items":[%s]}' "$*" > "$WORK/$file"
}

@test "passes when every expected node is listed once, Ready, with its role" {
  nodes nodes.json "$(node s1 server True)" "$(node a1 agent True)" "$(node a2 agent True)"
  run "$VERIFY" --expect s1=server --expect a1=agent --expect a2=agent --timeout 0
  [ "$status" -eq 0 ]
  [[ "$output" == *"⏳ checking 3 nodes of the cluster"*"waiting up to 0 s"* ]]
  [[ "$output" == *"✅ s1 server: Ready"* && "$output" == *"✅ a1 agent: Ready"* && "$output" == *"✅ a2 agent: Ready"* ]]
  [[ "$output" == *"✅ all 3 expected nodes are Ready with their roles"* ]]
}

@test "names the node that is missing, NotReady or in the wrong role, and exits 1 after the timeout" {
  nodes nodes.json "$(node s1 server True)" "$(node a1 agent False)" "$(node a3 server True)"
  run "$VERIFY" --expect s1=server --expect a1=agent --expect a2=agent --expect a3=agent --timeout 2 --interval 0.5
  [ "$status" -eq 1 ]
  [[ "$output" == *"❌ a1 agent: NotReady (Ready=False)"* ]]
  [[ "$output" == *"❌ a2 agent: missing (not listed by the cluster)"* ]]
  [[ "$output" == *"❌ a3 agent: wrong-role (listed as server)"* ]]
  [[ "$output" == *"❌ not every expected node is Ready with its role after "*"(timeout 2 s): a1 (NotReady), a2 (missing), a3 (wrong-role)"* ]]
  [[ "$output" == *"⏳ waiting for: a1 (NotReady), a2 (missing), a3 (wrong-role)"* ]]
}

@test "waits, bounded, for a node that turns Ready meanwhile" {
  nodes nodes.json "$(node s1 server True)" "$(node a1 agent False)"
  nodes nodes-later.json "$(node s1 server True)" "$(node a1 agent True)"
  ( sleep 1.5; touch "$WORK/later" ) &
  run "$VERIFY" --expect s1=server --expect a1=agent --timeout 20 --interval 0.5
  [ "$status" -eq 0 ]
  [[ "$output" == *"⏳ waiting for: a1 (NotReady)"* ]]
  [[ "$output" == *"✅ a1 agent: Ready"* ]]
}

@test "reports listed nodes nobody expected without failing" {
  nodes nodes.json "$(node s1 server True)" "$(node stray agent True)"
  run "$VERIFY" --expect s1=server --timeout 0
  [ "$status" -eq 0 ]
  [[ "$output" == *"➕ stray agent: listed by the cluster but not expected (Ready=True)"* ]]
}

@test "reads the expected nodes from a file (the module's, by default) and prints JSON on request" {
  nodes nodes.json "$(node s1 server True)" "$(node a1 agent True)"
  printf '# name role certname\ns1 server s1.example.test\n\na1 agent a1.example.test\n' > "$WORK/expected"
  run "$VERIFY" --expect-file "$WORK/expected" --timeout 0 --json
  [ "$status" -eq 0 ]
  echo "$output" | ruby -rjson -e 'v = JSON.parse($stdin.read); exit(v["ok"] && v["nodes"].map { |n| [n["name"], n["role"], n["status"]] } == [["s1", "server", "Ready"], ["a1", "agent", "Ready"]] ? 0 : 1)'
}

@test "a cluster that cannot be listed fails with kubectl's reason" {
  touch "$WORK/refused"
  run "$VERIFY" --expect s1=server --timeout 0
  [ "$status" -eq 1 ]
  [[ "$output" == *"❌ cannot list the nodes: The connection to the server 127.0.0.1:6443 was refused"* ]]
}

@test "refuses bad usage with exit 2, naming the setting" {
  run "$VERIFY" --expect s1=controller
  [ "$status" -eq 2 ]
  [[ "$output" == *'--expect "s1=controller": must be NAME=server or NAME=agent'* ]]
  run "$VERIFY" --expect s1=server --timeout soon
  [ "$status" -eq 2 ]
  [[ "$output" == *'--timeout "soon": must be whole seconds'* ]]
  run "$VERIFY" --expect-file "$WORK/none"
  [ "$status" -eq 2 ]
  [[ "$output" == *"cannot be read (give the nodes with --expect NAME=ROLE)"* ]]
}
