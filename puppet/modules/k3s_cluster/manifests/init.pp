# @summary Installs k3s on a node and joins it to a cluster, sharing join tokens through PuppetDB or
#   taking them from a root-only file.
#
# @param ensure
#   `present` installs, configures and runs k3s; `absent` stops and disables its unit.
# @param node_type
#   `server` runs the control plane (unit `k3s`); `agent` runs a worker (unit `k3s-agent`).
# @param cluster_init
#   Start a new cluster with embedded etcd. Exactly one server of a cluster sets it.
# @param cluster_name
#   DNS label naming the cluster; exports are collected only by nodes with the same name.
# @param auto_token_sharing
#   Servers export their join material to PuppetDB and agents collect it (needs PuppetDB and a
#   Puppet server). `false` is manual mode: `token` or `token_file` and `server_url` are given.
# @param wait_for_token
#   With automatic sharing, an agent whose cluster has not exported yet polls PuppetDB for up to
#   `token_timeout` seconds in the same run instead of failing.
# @param token_timeout
#   Seconds (30–600) to wait for the cluster's export and for the k3s unit to turn active.
# @param token
#   Manual mode: the join token. Written to a root-only file; never put in config.yaml or logs.
# @param token_file
#   Manual mode: absolute path of a root-only file that already holds the join token.
# @param server_url
#   `https://host:port` of a server to join (agents and joining servers in manual mode).
# @param k3s_version
#   k3s release to install, e.g. `v1.34.3+k3s1`.
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
# @param share_server_token
#   With automatic sharing, also export the server token so further servers can join from
#   PuppetDB. Off by default: the server token is cluster-admin material.
# @param server_address
#   Address agents use to reach this server in its export; defaults to the node's primary IP.
# @param puppetdb_url
#   PuppetDB the collection script polls; defaults to the first `server_urls` entry of
#   puppetdb.conf, else `https://<puppet server>:8081`.
# @param wait_for_service
#   Wait (up to `token_timeout`) for the k3s unit to turn active before the run ends. `false` queues
#   the start and returns: for orchestrators that verify readiness themselves, such as the Pulumi program.
# @param install_script_url
#   Where the install script is downloaded from with `install_method => 'script'`.
#
# @example Server exporting its join material
#   class { 'k3s_cluster':
#     node_type          => 'server',
#     cluster_init       => true,
#     cluster_name       => 'my-cluster',
#     auto_token_sharing => true,
#   }
#
# @example Agent collecting it
#   class { 'k3s_cluster':
#     node_type          => 'agent',
#     cluster_name       => 'my-cluster',
#     auto_token_sharing => true,
#   }
class k3s_cluster (
  Enum['present', 'absent']                          $ensure             = 'present',
  Enum['server', 'agent']                            $node_type          = 'server',
  Boolean                                            $cluster_init       = false,
  Pattern[/\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\z/]  $cluster_name       = 'default',
  Boolean                                            $auto_token_sharing = false,
  Boolean                                            $wait_for_token     = true,
  Integer[30, 600]                                   $token_timeout      = 300,
  Optional[Sensitive[String[1]]]                     $token              = undef,
  Optional[Pattern[/\A\/[^\n]*\z/]]                  $token_file         = undef,
  Optional[Pattern[/\Ahttps:\/\/[^\s\/:]+(:[0-9]+)?\/?\z/]] $server_url   = undef,
  Pattern[/\Av[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+\z/]  $k3s_version        = 'v1.34.3+k3s1',
  Enum['script', 'binary', 'none']                   $install_method     = 'script',
  Optional[Pattern[/\A(https?:\/\/|puppet:\/\/\/|\/)/]] $binary_source   = undef,
  Optional[Pattern[/\A[0-9a-f]{64}\z/]]              $binary_sha256      = undef,
  Pattern[/\A\/[^\n]*\z/]                            $data_dir           = '/var/lib/rancher/k3s',
  String[1]                                          $node_name          = $facts['networking']['hostname'],
  Array[String[1]]                                   $tls_san            = [],
  Hash[String[1], Any]                               $config             = {},
  Boolean                                            $share_server_token = false,
  Optional[String[1]]                                $server_address     = undef,
  Optional[Pattern[/\Ahttps:\/\//]]                  $puppetdb_url       = undef,
  Pattern[/\Ahttps:\/\//]                            $install_script_url = 'https://get.k3s.io',
  Boolean                                            $wait_for_service   = true,
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
  }

  $unit = $node_type ? { 'server' => 'k3s', default => 'k3s-agent' }

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
