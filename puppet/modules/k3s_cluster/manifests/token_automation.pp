# @summary Shares join material through PuppetDB: servers export it, agents collect it and configure
#   k3s from it. Also writes the node's facts files. With auto_token_sharing => false it exports nothing.
# @api private
class k3s_cluster::token_automation {
  $cluster = $k3s_cluster::cluster_name
  $address = $k3s_cluster::server_address ? {
    undef   => $facts['networking']['ip'],
    default => $k3s_cluster::server_address,
  }
  $own_url = "https://${address}:6443"
  # Agents, and servers joining without a given server_url, take their join material from PuppetDB.
  $joins_from_puppetdb = $k3s_cluster::node_type == 'agent' or !$k3s_cluster::cluster_init
  $collects = $k3s_cluster::auto_token_sharing and $joins_from_puppetdb and $k3s_cluster::server_url =~ Undef

  ['/etc/facter', '/etc/facter/facts.d'].each |$dir| {
    unless defined(File[$dir]) {
      file { $dir:
        ensure => directory,
        owner  => 'root',
        group  => 'root',
        mode   => '0755',
      }
    }
  }

  if $k3s_cluster::node_type == 'server' {
    $export = $facts['k3s_cluster_export']
    $exported = $k3s_cluster::auto_token_sharing and $export =~ Hash
    if $exported {
      # Plain strings: PuppetDB deletes Sensitive values from exports. The agent token lets a node join
      # as an agent only; the server token is exported only when share_server_token asks for it.
      $server_token = $k3s_cluster::share_server_token ? { true => $export['server_token'], default => undef }
      @@k3s_cluster_info { "${cluster}-${trusted['certname']}":
        cluster_name  => $cluster,
        server_url    => $own_url,
        role          => 'server',
        ca_hash       => $export['ca_hash'],
        agent_token   => $export['agent_token'],
        server_token  => $server_token,
        token_timeout => $k3s_cluster::token_timeout,
      }
    }
    $share_flag = ($k3s_cluster::auto_token_sharing and $k3s_cluster::share_server_token) ? { true => 'file', default => 'absent' }
    file { '/etc/rancher/k3s/share-server-token':
      ensure  => $share_flag,
      owner   => 'root',
      group   => 'root',
      mode    => '0600',
      content => "The k3s_cluster_export fact includes the server token (share_server_token => true).\n",
    }
    file { '/etc/facter/facts.d/k3s_server_info.yaml':
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0600',
      content => join([
          '# Managed by Puppet (k3s_cluster). No token: facts are stored in PuppetDB.',
          'k3s_server_info:',
          "  cluster_name: ${cluster}",
          "  server_url: ${own_url}",
          "  cluster_init: ${k3s_cluster::cluster_init}",
          "  auto_token_sharing: ${k3s_cluster::auto_token_sharing}",
          "  exported: ${exported}",
          '',
      ], "\n"),
    }
  }

  if $collects {
    $role = $k3s_cluster::node_type
    file { '/usr/local/bin/k3s-collect-cluster-info.sh':
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0700',
      content => epp('k3s_cluster/collect-cluster-info.sh.epp', {
        'cluster_name'   => $cluster,
        'role'           => $role,
        'wait_for_token' => $k3s_cluster::wait_for_token,
        'token_timeout'  => $k3s_cluster::token_timeout,
        'puppetdb_url'   => $k3s_cluster::puppetdb_url,
      }),
    }

    # The exports are read from PuppetDB by the script, not collected with <<| |>>: a collected token
    # would sit in the catalog Puppet caches on the node at 0660.
    exec { 'k3s_cluster collect cluster info':
      command   => '/usr/local/bin/k3s-collect-cluster-info.sh --apply',
      unless    => '/usr/local/bin/k3s-collect-cluster-info.sh --check',
      timeout   => $k3s_cluster::token_timeout + 30,
      logoutput => true,
      require   => File['/usr/local/bin/k3s-collect-cluster-info.sh', '/etc/facter/facts.d'],
    }
  }
}
