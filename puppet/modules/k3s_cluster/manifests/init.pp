# @summary Installs k3s on a node and joins it to a cluster: servers share their verified join material
#   through PuppetDB exported resources, which the puppetserver reads when it compiles a joining node's
#   catalog; or the token comes from a root-only file.
#
# @param ensure
#   `present` installs, configures and runs k3s; `absent` stops and disables its unit.
# @param node_type
#   `server` runs the control plane (unit `k3s`); `agent` runs a worker (unit `k3s-agent`).
# @param cluster_init
#   `true`: this server starts the cluster (embedded etcd). `false`: this server only joins one. Not set
#   (the default): with automatic sharing, the server starts the cluster when no other server of it has
#   (the lowest certname among servers starting together, or the first of `servers`) and joins it
#   otherwise; in manual mode, a server without `server_url` starts a cluster, as k3s does.
# @param cluster_name
#   DNS label naming the cluster; nodes join only servers of the same cluster name.
# @param auto_token_sharing
#   Servers export their join material once they pass the seven-step check, and joining nodes get it in
#   their catalog from the puppetserver (needs a puppetserver with PuppetDB; nodes need nothing but their
#   usual connection to the puppetserver). `false` is manual mode: `token` or `token_file` and
#   `server_url` are given.
# @param wait_for_token
#   With automatic sharing, a node whose cluster has nothing to join yet waits (k3s not started, a notice
#   per Puppet run) and fails its runs once `token_timeout` has passed since it began waiting. `false`:
#   fail at once.
# @param token_timeout
#   Seconds (30–600): how long a node waits for its cluster across Puppet runs, and how long one run waits
#   for the k3s unit, the seven-step check on a server, or an agent's join.
# @param token
#   Manual mode: the join token. Written to a root-only file; sealed to the node in the catalog when a
#   puppetserver compiles it; never in config.yaml or logs.
# @param token_file
#   Manual mode: absolute path of a root-only file that already holds the join token.
# @param server_url
#   `https://host:port` of a server to join (agents and joining servers in manual mode).
# @param k3s_version
#   k3s release to install: a pinned release such as `v1.34.3+k3s1` (see `K3s_cluster::Version`).
# @param install_method
#   `script` (the official install script, version pinned), `binary` (from `binary_source`, for
#   air-gapped hosts) or `none` (k3s is already installed).
# @param binary_source
#   URL (http, https, puppet) or absolute path of the k3s binary for `install_method => 'binary'`.
# @param binary_sha256
#   Expected sha256 of the binary; required when `binary_source` is a plain http URL.
# @param data_dir
#   k3s data directory.
# @param node_name
#   Kubernetes node name.
# @param tls_san
#   Extra names and addresses for the server certificate (load balancers, public IPs).
# @param config
#   Further k3s configuration keys (flag names without dashes' prefix), merged into config.yaml.
# @param servers
#   With automatic sharing, optional: the certnames of the cluster's servers. Only these may start or
#   join the cluster as servers (and so receive the server token), joining nodes trust only their
#   exports, and the first of them starts the cluster without a candidate run. Empty: any node your
#   manifests classify as a server of the cluster.
# @param collect_from
#   `puppetserver` (default): joining nodes get their cluster's exports in their catalog, read from PuppetDB
#   by the puppetserver. `puppetdb`: agents query PuppetDB themselves with their Puppet certificate and
#   wait for an export within one run (only where nodes may reach PuppetDB; agents only).
# @param server_address
#   Address other nodes use to reach this server in its export; defaults to the node's primary IP.
# @param puppetdb_url
#   With `collect_from => 'puppetdb'`: the PuppetDB agents query; defaults to the first `server_urls`
#   entry of puppetdb.conf, else `https://<puppet server>:8081`.
# @param wait_for_service
#   Wait (up to `token_timeout`) for the k3s unit to turn active before the run ends. `false` queues
#   the start and returns: for orchestrators that verify readiness themselves, such as the Pulumi program.
#   Sharing servers always queue the start and wait in the seven-step check instead.
# @param start_service
#   `false` installs and configures k3s but leaves its unit stopped (a running one keeps running): for
#   orchestrators that start it themselves once the node may join, such as the Pulumi program, which
#   prepares a node before its join token exists and then only writes the token and starts the unit with
#   `/usr/local/sbin/k3s-cluster-start`.
# @param install_script_url
#   Where the install script is downloaded from with `install_method => 'script'`.
#
# @example Server starting a cluster and exporting its join material once verified
#   class { 'k3s_cluster':
#     node_type          => 'server',
#     cluster_init       => true,
#     cluster_name       => 'my-cluster',
#     auto_token_sharing => true,
#   }
#
# @example Agent joining it
#   class { 'k3s_cluster':
#     node_type          => 'agent',
#     cluster_name       => 'my-cluster',
#     auto_token_sharing => true,
#   }
class k3s_cluster (
  Enum['present', 'absent']                          $ensure             = 'present',
  Enum['server', 'agent']                            $node_type          = 'server',
  Optional[Boolean]                                  $cluster_init       = undef,
  Pattern[/\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\z/]  $cluster_name       = 'default',
  Boolean                                            $auto_token_sharing = false,
  Boolean                                            $wait_for_token     = true,
  Integer[30, 600]                                   $token_timeout      = 300,
  Optional[Sensitive[String[1]]]                     $token              = undef,
  Optional[Pattern[/\A\/[^\n]*\z/]]                  $token_file         = undef,
  Optional[Pattern[/\Ahttps:\/\/[^\s\/:]+(:[0-9]+)?\/?\z/]] $server_url   = undef,
  K3s_cluster::Version                               $k3s_version        = 'v1.34.3+k3s1',
  Enum['script', 'binary', 'none']                   $install_method     = 'script',
  Optional[Pattern[/\A(https?:\/\/|puppet:\/\/\/|\/)/]] $binary_source   = undef,
  Optional[Pattern[/\A[0-9a-f]{64}\z/]]              $binary_sha256      = undef,
  Pattern[/\A\/[^\n]*\z/]                            $data_dir           = '/var/lib/rancher/k3s',
  String[1]                                          $node_name          = $facts['networking']['hostname'],
  Array[String[1]]                                   $tls_san            = [],
  Hash[String[1], Any]                               $config             = {},
  Array[String[1]]                                   $servers            = [],
  Enum['puppetserver', 'puppetdb']                   $collect_from       = 'puppetserver',
  Optional[String[1]]                                $server_address     = undef,
  Optional[Pattern[/\Ahttps:\/\//]]                  $puppetdb_url       = undef,
  Pattern[/\Ahttps:\/\//]                            $install_script_url = 'https://get.k3s.io',
  Boolean                                            $wait_for_service   = true,
  Boolean                                            $start_service      = true,
) {
  k3s_cluster::validate { 'parameters':
    node_type          => $node_type,
    cluster_init       => $cluster_init,
    auto_token_sharing => $auto_token_sharing,
    token_given        => $token =~ NotUndef,
    token_file         => $token_file,
    server_url         => $server_url,
    install_method     => $install_method,
    binary_source      => $binary_source,
    binary_sha256      => $binary_sha256,
    servers            => $servers,
    collect_from       => $collect_from,
    puppetdb_url       => $puppetdb_url,
  }

  $unit = $node_type ? { 'server' => 'k3s', default => 'k3s-agent' }
  # Automatic sharing through the puppetserver: what this node does in this catalog is decided here, on the
  # puppetserver, from the cluster's exports in PuppetDB (k3s_cluster::cluster_plan).
  $sharing = $ensure == 'present' and $auto_token_sharing
  $plan = ($sharing and !($node_type == 'agent' and $collect_from == 'puppetdb')) ? {
    true    => k3s_cluster::cluster_plan({
        'cluster_name'   => $cluster_name,
        'certname'       => $trusted['certname'],
        'node_type'      => $node_type,
        'cluster_init'   => $cluster_init,
        'servers'        => $servers,
        'wait_for_token' => $wait_for_token,
        'token_timeout'  => $token_timeout,
        'node_name'      => $node_name,
        'now'            => Integer(Timestamp().strftime('%s')),
    }),
    default => {
      'action'  => $sharing ? { true => 'collect', default => 'manual' },
      'status'  => 'joining',
      'records' => [],
    },
  }
  # k3s runs when there is a cluster to start or join (not while a server is a candidate or anyone waits),
  # unless whoever applies this starts it.
  $start = $start_service and $plan['action'] in ['manual', 'collect', 'init', 'join', 'joined']

  if $ensure == 'present' {
    contain k3s_cluster::install
    contain k3s_cluster::config
    contain k3s_cluster::token_automation
    contain k3s_cluster::service

    Class['k3s_cluster::install']
    -> Class['k3s_cluster::config']
    -> Class['k3s_cluster::token_automation']
    -> Class['k3s_cluster::service']
  } else {
    contain k3s_cluster::service
  }
}
