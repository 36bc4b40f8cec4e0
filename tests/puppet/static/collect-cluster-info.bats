#!/usr/bin/env bats
# The collection script, rendered from its template as Puppet renders it (tests/puppet/run.sh renders it for
# certname node-a1 into $SCRIPT_DIR/collect-<source>-<role>.sh): with collect_from => puppetdb against a fake
# PuppetDB over HTTPS, and in its default mode from the records Puppet writes (no PuppetDB at all).

HASH=$(printf 'a%.0s' {1..64})
AGENT_TOKEN="K10${HASH}::node:$(printf 'b%.0s' {1..32})"
SERVER_TOKEN="K10${HASH}::server:$(printf 'c%.0s' {1..32})"
PW=$(printf 'b%.0s' {1..32})
SERVER_PW=$(printf 'c%.0s' {1..32})
SCRIPT=$SCRIPT_DIR/collect-puppetdb-agent.sh

setup_file() {
  export STATE=$(mktemp -d)
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$STATE/key.pem" -out "$STATE/cert.pem" 2>/dev/null
  export PDB_PORT=$((20000 + RANDOM % 20000))
  python3 "$BATS_TEST_DIRNAME/fake-puppetdb.py" "$PDB_PORT" "$STATE/cert.pem" "$STATE/key.pem" "$STATE" &
  echo $! > "$STATE/pid"
  # A `puppet` that answers `puppet config print` with this test's certificate and PuppetDB.
  mkdir -p "$STATE/bin"
  cat > "$STATE/bin/puppet" <<FAKE
#!/bin/sh
case "\$3" in
  hostcert|localcacert) echo "$STATE/cert.pem" ;;
  hostprivkey) echo "$STATE/key.pem" ;;
  confdir) echo "$STATE/conf" ;;
  server) echo 127.0.0.1 ;;
esac
FAKE
  chmod +x "$STATE/bin/puppet"
  mkdir -p "$STATE/conf"
  printf '[main]\nserver_urls = https://127.0.0.1:%s\n' "$PDB_PORT" > "$STATE/conf/puppetdb.conf"
  for _ in $(seq 1 50); do curl -sk "https://127.0.0.1:$PDB_PORT/ping" >/dev/null && break; sleep 0.1; done
}

teardown_file() {
  kill "$(cat "$STATE/pid")" 2>/dev/null || true
  rm -rf "$STATE"
}

setup() {
  export K3S_COLLECT_ROOT=$(mktemp -d)
  export PATH="$STATE/bin:$PATH"
  rm -f "$STATE/answer.json" "$STATE/queries.log"
  pdb_up
}

teardown() {
  rm -rf "$K3S_COLLECT_ROOT"
}

export_records() { # title=url ...: what PuppetDB answers for the cluster's exports
  local out= sep= pair
  for pair in "$@"; do
    out+=$(printf '%s{"title":"%s","parameters":{"cluster_name":"demo","server_url":"%s","role":"server","status":"verified","ca_hash":"%s","agent_token":"%s"}}' \
      "$sep" "${pair%%=*}" "${pair#*=}" "$HASH" "$AGENT_TOKEN")
    sep=,
  done
  printf '[%s]' "$out" > "$STATE/answer.json"
}

kept_record() { # title url [server token]: a record as the k3s_cluster_info provider (or this script) writes it
  mkdir -p "$K3S_COLLECT_ROOT/etc/rancher/k3s/cluster-info"
  printf -- '---\ncluster_name: demo\nserver_url: %s\nrole: server\nca_hash: %s\nagent_token: %s\n' "$2" "$HASH" "$AGENT_TOKEN" \
    > "$K3S_COLLECT_ROOT/etc/rancher/k3s/cluster-info/$1.yaml"
  [ -z "${3:-}" ] || printf 'server_token: %s\n' "$3" >> "$K3S_COLLECT_ROOT/etc/rancher/k3s/cluster-info/$1.yaml"
}

# Titles in node-a1's order: sha256 of "node-a1/<title>".
ranked() { for t in "$@"; do printf '%s %s\n' "$(printf 'node-a1/%s' "$t" | sha256sum | cut -c1-64)" "$t"; done | sort | cut -d' ' -f2; }

pdb_down() { printf '[main]\nserver_urls = https://127.0.0.1:1\n' > "$STATE/conf/puppetdb.conf"; }
pdb_up() { printf '[main]\nserver_urls = https://127.0.0.1:%s\n' "$PDB_PORT" > "$STATE/conf/puppetdb.conf"; }

mode_of() { stat -c %a "$K3S_COLLECT_ROOT/$1"; }

@test "refuses an unknown format with exit 2 and says what it accepts" {
  run "$SCRIPT" --format xml
  [ "$status" -eq 2 ]
  [[ "$output" == *"--format must be yaml or shell (got 'xml')"* ]]
}

@test "refuses a timeout outside 30-600 with exit 2" {
  run "$SCRIPT" --timeout 5
  [ "$status" -eq 2 ]
  [[ "$output" == *"between 30 and 600 seconds (got '5')"* ]]
}

@test "configures the join from the cluster's export in PuppetDB: root-only files, token only in the token file" {
  export_records demo-server-a=https://127.0.0.2:6443
  run "$SCRIPT" --apply
  [ "$status" -eq 0 ]
  [[ "$output" != *"$PW"* ]]
  [ "$(cat "$K3S_COLLECT_ROOT/etc/rancher/k3s/cluster-join-token")" = "$AGENT_TOKEN" ]
  grep -qx 'server: https://127.0.0.2:6443' "$K3S_COLLECT_ROOT/etc/rancher/k3s/config.yaml.d/50-cluster-join.yaml"
  for f in etc/rancher/k3s/cluster-join-token etc/rancher/k3s/config.yaml.d/50-cluster-join.yaml \
           etc/facter/facts.d/k3s_cluster_info.yaml etc/facter/facts.d/k3s_config_info.yaml; do
    [ "$(mode_of "$f")" = 600 ]
  done
  ! grep -rq "$PW" "$K3S_COLLECT_ROOT/etc/facter" "$K3S_COLLECT_ROOT/etc/rancher/k3s/config.yaml.d"
  [ "$(mode_of etc/rancher/k3s/cluster-info/demo-server-a.yaml)" = 600 ]
  [ "$(mode_of etc/rancher/k3s/cluster-info)" = 700 ]
  grep -q 'cluster_name' "$STATE/queries.log"
  run "$SCRIPT" --check
  [ "$status" -eq 0 ]
}

@test "uses the records kept from the last answer while PuppetDB is unreachable" {
  kept_record demo-server-a https://127.0.0.2:6443
  pdb_down
  run "$SCRIPT" --apply
  [ "$status" -eq 0 ]
  grep -qx 'server: https://127.0.0.2:6443' "$K3S_COLLECT_ROOT/etc/rancher/k3s/config.yaml.d/50-cluster-join.yaml"
}

@test "drops a kept record whose server no longer exports" {
  kept_record demo-server-old https://127.0.0.5:6443
  export_records demo-server-new=https://127.0.0.6:6443
  run "$SCRIPT" --apply
  [ "$status" -eq 0 ]
  [ ! -e "$K3S_COLLECT_ROOT/etc/rancher/k3s/cluster-info/demo-server-old.yaml" ]
  grep -qx 'server: https://127.0.0.6:6443' "$K3S_COLLECT_ROOT/etc/rancher/k3s/config.yaml.d/50-cluster-join.yaml"
}

@test "picks, in this node's own order of the servers, the first that answers; else the first" {
  mapfile -t order < <(ranked demo-server-a demo-server-b); first=${order[0]} second=${order[1]}
  # The second in this node's order answers (the fake serves /ping), the first does not.
  export_records "$first=https://127.0.0.2:6443" "$second=https://127.0.0.1:$PDB_PORT"
  run "$SCRIPT" --format yaml
  [ "$status" -eq 0 ]
  [[ "$output" == *"server: $second"* ]]
  export_records "$first=https://127.0.0.2:6443" "$second=https://127.0.0.3:6443"
  run "$SCRIPT" --format yaml
  [[ "$output" == *"server: $first"* ]]
}

@test "keeps the server it joined through while that one answers" {
  mapfile -t order < <(ranked demo-server-a demo-server-b); first=${order[0]} second=${order[1]}
  export_records "$first=https://127.0.0.1:$PDB_PORT" "$second=https://localhost:$PDB_PORT"
  mkdir -p "$K3S_COLLECT_ROOT/etc/rancher/k3s/config.yaml.d"
  printf 'server: https://localhost:%s\n' "$PDB_PORT" > "$K3S_COLLECT_ROOT/etc/rancher/k3s/config.yaml.d/50-cluster-join.yaml"
  run "$SCRIPT" --format yaml
  [[ "$output" == *"server: $second"* ]]
}

@test "shell format gives the URL and the token file, never the token" {
  export_records demo-server-a=https://127.0.0.2:6443
  run "$SCRIPT" --format shell
  [ "$status" -eq 0 ]
  [[ "$output" == *"K3S_URL=https://127.0.0.2:6443"* ]]
  [[ "$output" == *"K3S_TOKEN_FILE=$K3S_COLLECT_ROOT/etc/rancher/k3s/cluster-join-token"* ]]
  [[ "$output" != *"$PW"* ]]
}

@test "without records or waiting, an empty PuppetDB answer exits 3" {
  run "$SCRIPT" --no-wait
  [ "$status" -eq 3 ]
  [[ "$output" == *"no server of cluster 'demo' has exported"* ]]
  grep -q 'cluster_name' "$STATE/queries.log"
}

@test "waits for PuppetDB to show the export, then writes it root-only and joins" {
  ( sleep 4; printf '[{"title":"demo-late","parameters":{"cluster_name":"demo","server_url":"https://127.0.0.9:6443","role":"server","status":"verified","ca_hash":"%s","agent_token":"%s"}}]' "$HASH" "$AGENT_TOKEN" > "$STATE/answer.json" ) &
  run "$SCRIPT" --apply --timeout 30
  [ "$status" -eq 0 ]
  [[ "$output" == *"polling PuppetDB for up to 30 s"* ]]
  [[ "$output" != *"$PW"* ]]
  [ "$(mode_of etc/rancher/k3s/cluster-info/demo-late.yaml)" = 600 ]
  [ "$(mode_of etc/rancher/k3s/cluster-info)" = 700 ]
  grep -qx 'server: https://127.0.0.9:6443' "$K3S_COLLECT_ROOT/etc/rancher/k3s/config.yaml.d/50-cluster-join.yaml"
  [ "$(wc -l < "$STATE/queries.log")" -ge 2 ]
}

@test "an unreachable PuppetDB without waiting or kept records exits 4 naming it" {
  pdb_down
  run "$SCRIPT" --no-wait
  [ "$status" -eq 4 ]
  [[ "$output" == *"PuppetDB at https://127.0.0.1:1 did not answer"* ]]
}

@test "an export whose token names another CA exits 5" {
  printf '[{"title":"demo-x","parameters":{"cluster_name":"demo","server_url":"https://127.0.0.2:6443","role":"server","status":"verified","ca_hash":"%s","agent_token":"%s"}}]' \
    "$(printf 'c%.0s' {1..64})" "$AGENT_TOKEN" > "$STATE/answer.json"
  run "$SCRIPT" --apply
  [ "$status" -eq 5 ]
  [[ "$output" != *"$PW"* ]]
}

@test "ignores exports of servers that have not passed the seven-step check" {
  printf '[{"title":"demo-s","parameters":{"cluster_name":"demo","server_url":"https://127.0.0.2:6443","role":"server","status":"initialising"}}]' > "$STATE/answer.json"
  run "$SCRIPT" --no-wait
  [ "$status" -eq 3 ]
  [ ! -e "$K3S_COLLECT_ROOT/etc/rancher/k3s/cluster-info/demo-s.yaml" ]
  grep -q 'status' "$STATE/queries.log"
}

# Default mode (collect_from => puppetserver): the records come from the catalog; PuppetDB is never asked.

@test "puppetserver mode: joins from the records Puppet wrote, without asking PuppetDB" {
  kept_record demo-server-a https://127.0.0.2:6443
  run "$SCRIPT_DIR/collect-puppetserver-agent.sh" --apply
  [ "$status" -eq 0 ]
  [ "$(cat "$K3S_COLLECT_ROOT/etc/rancher/k3s/cluster-join-token")" = "$AGENT_TOKEN" ]
  grep -qx 'server: https://127.0.0.2:6443' "$K3S_COLLECT_ROOT/etc/rancher/k3s/config.yaml.d/50-cluster-join.yaml"
  [ ! -e "$STATE/queries.log" ]
  [[ "$output" != *"$PW"* ]]
  run "$SCRIPT_DIR/collect-puppetserver-agent.sh" --check
  [ "$status" -eq 0 ]
}

@test "puppetserver mode: without a record it exits 3 saying where records come from" {
  run "$SCRIPT_DIR/collect-puppetserver-agent.sh" --apply
  [ "$status" -eq 3 ]
  [[ "$output" == *"no verified server record of cluster 'demo'"*"Puppet writes them from this node's catalog"* ]]
  [ ! -e "$STATE/queries.log" ]
}

@test "a joining server joins with the server token and serves agents with the cluster's agent token" {
  kept_record demo-server-a https://127.0.0.2:6443 "$SERVER_TOKEN"
  run "$SCRIPT_DIR/collect-puppetserver-server.sh" --apply
  [ "$status" -eq 0 ]
  [ "$(cat "$K3S_COLLECT_ROOT/etc/rancher/k3s/cluster-join-token")" = "$SERVER_TOKEN" ]
  [ "$(cat "$K3S_COLLECT_ROOT/etc/rancher/k3s/agent-token-password")" = "$PW" ]
  [ "$(mode_of etc/rancher/k3s/agent-token-password)" = 600 ]
  [ "$(mode_of etc/rancher/k3s/cluster-join-token)" = 600 ]
  [[ "$output" != *"$SERVER_PW"* && "$output" != *"$PW"* ]]
  run "$SCRIPT_DIR/collect-puppetserver-server.sh" --check
  [ "$status" -eq 0 ]
  printf 'x' > "$K3S_COLLECT_ROOT/etc/rancher/k3s/agent-token-password"
  run "$SCRIPT_DIR/collect-puppetserver-server.sh" --check
  [ "$status" -eq 1 ]
}

@test "a joining server refuses a record without a server token (exit 5)" {
  kept_record demo-server-a https://127.0.0.2:6443
  run "$SCRIPT_DIR/collect-puppetserver-server.sh" --apply
  [ "$status" -eq 5 ]
  [[ "$output" == *"the record demo-server-a has no server token"* ]]
}
