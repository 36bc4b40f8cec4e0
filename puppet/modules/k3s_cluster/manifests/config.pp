# @summary Writes k3s's config.yaml (root 0600). Tokens appear in it only as `token-file` paths.
# @api private
class k3s_cluster::config {
  $manual_token_file = '/etc/rancher/k3s/cluster-token'
  $agent_token_password = '/etc/rancher/k3s/agent-token-password'
  $action = $k3s_cluster::plan['action']
  $sharing_server = $k3s_cluster::sharing and $k3s_cluster::node_type == 'server'

  file { ['/etc/rancher', '/etc/rancher/k3s', '/etc/rancher/k3s/config.yaml.d']:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  if $k3s_cluster::token =~ NotUndef {
    file { $manual_token_file:
      ensure    => file,
      owner     => 'root',
      group     => 'root',
      mode      => '0600',
      content   => Sensitive("${k3s_cluster::token.unwrap}\n"),
      show_diff => false,
    }
    $token_file = $manual_token_file
  } else {
    $token_file = $k3s_cluster::token_file
  }

  # A sharing server has its own agent token, so what it exports lets a node join as an agent and nothing
  # more. The server that starts the cluster makes the password once, on the node (it never enters a
  # catalog); a joining server gets the cluster's agent token with its join records.
  if $sharing_server and $action == 'init' {
    exec { 'k3s_cluster agent token password':
      command => "sh -c 'umask 077; openssl rand -hex 16 > ${agent_token_password}'",
      creates => $agent_token_password,
      path    => ['/usr/bin', '/bin'],
      require => File['/etc/rancher/k3s'],
      before  => File['/etc/rancher/k3s/config.yaml'],
    }
  }
  $agent_token = $sharing_server ? {
    true    => { 'agent-token-file' => $agent_token_password },
    default => {},
  }
  $cluster_init = $k3s_cluster::sharing ? {
    true    => $sharing_server and $action == 'init',
    default => $k3s_cluster::cluster_init == true,
  }

  $settings = {
    'node-name'             => $k3s_cluster::node_name,
    'data-dir'              => $k3s_cluster::data_dir,
    'write-kubeconfig-mode' => '0600',
  } + ($cluster_init ? { true => { 'cluster-init' => true }, default => {} }) + ($k3s_cluster::server_url ? {
    undef   => {},
    default => { 'server' => $k3s_cluster::server_url },
  }) + ($token_file ? {
    undef   => {},
    default => { 'token-file' => $token_file },
  }) + ($k3s_cluster::tls_san.empty ? {
    true    => {},
    default => { 'tls-san' => $k3s_cluster::tls_san },
  }) + $agent_token + $k3s_cluster::config

  file { '/etc/rancher/k3s/config.yaml':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0600',
    content => "# Managed by Puppet (k3s_cluster).\n${k3s_cluster::to_yaml($settings)}",
  }
}
