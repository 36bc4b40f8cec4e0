# @summary Shares join material through PuppetDB: every node of a sharing cluster exports its record,
#   servers their verified join material; joining nodes get the records of the verified servers in their
#   catalog (tokens sealed to the node) and configure k3s from them. Also the node's state and facts files.
#   With auto_token_sharing => false it exports nothing.
# @api private
class k3s_cluster::token_automation {
  $cluster = $k3s_cluster::cluster_name
  $plan = $k3s_cluster::plan
  $action = $plan['action']
  $node_type = $k3s_cluster::node_type
  $certname = $trusted['certname']
  $address = $k3s_cluster::server_address ? {
    undef   => $facts['networking']['ip'],
    default => $k3s_cluster::server_address,
  }
  $own_url = "https://${address}:6443"
  $sharing_server = $k3s_cluster::sharing and $node_type == 'server'
  $state_dir = '/var/lib/k3s-cluster'
  $info_dir = '/etc/rancher/k3s/cluster-info'

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

  # What the module's facts read on the next run (no secret): the role taken in the cluster, since when
  # the node waits, and for a sharing server what its seven-step check needs.
  $role = $action ? { 'joined' => 'join', default => $action }
  $state = {
    'cluster_name' => $cluster,
    'node_type'    => $node_type,
    'role'         => $role,
    'node_name'    => $k3s_cluster::node_name,
    'data_dir'     => $k3s_cluster::data_dir,
    'share'        => $sharing_server,
  } + ($plan['waiting_since'] ? { undef => {}, default => { 'waiting_since' => $plan['waiting_since'] } })
  file { $state_dir:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0700',
  }
  file { "${state_dir}/state.yaml":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0600',
    content => "# Managed by Puppet (k3s_cluster): read by its facts. No secret.\n${k3s_cluster::to_yaml($state)}",
  }

  if $k3s_cluster::sharing {
    # This node's record. A server's carries join material only while it passes the seven-step check
    # (the k3s_cluster_export fact runs it before every catalog): its agent-scoped token in clear, for
    # the joining nodes' catalogs (PuppetDB deletes Sensitive values from exports), and its server token
    # sealed to this puppetserver, which re-seals it for each server that joins.
    $export = $plan['export']
    $material = $export ? {
      undef   => {},
      default => {
        'ca_hash'             => $export['ca_hash'],
        'agent_token'         => $export['agent_token'],
        'sealed_server_token' => $export['sealed_server_token'],
        'verified_at'         => $export['verified_at'],
      },
    }
    $url = $node_type ? { 'server' => { 'server_url' => $own_url }, default => {} }
    @@k3s_cluster_info { "${cluster}-${certname}":
      cluster_name  => $cluster,
      role          => $node_type,
      node_name     => $k3s_cluster::node_name,
      status        => $plan['status'],
      token_timeout => $k3s_cluster::token_timeout,
      *             => $url + $material,
    }
  }

  if $sharing_server {
    file { "${state_dir}/sealing-cert.pem":
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => k3s_cluster::compiler_certificate(),
    }
    # What `k3s-cluster-verify-cluster` expects by default: every node that exported a record for the
    # cluster, with its role (name role certname per line).
    $expected = $plan['expected_nodes'].map |$n| { "${n['name']} ${n['role']} ${n['certname']}\n" }.join('')
    file { "${state_dir}/expected-nodes":
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => join([
          "# Managed by Puppet (k3s_cluster): the nodes of cluster ${cluster} as PuppetDB knew them (name role certname).",
          $expected,
      ], "\n"),
    }
    $exported = $plan['export'] =~ NotUndef
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
          "  role: ${role}",
          "  status: ${plan['status']}",
          "  exported: ${exported}",
          '',
      ], "\n"),
    }
    unless $exported {
      $why = $plan['not_exported']
      if $why and $action in ['init', 'join', 'joined'] {
        # Compile-time: on the puppetserver's log; the run's own check prints the steps on the node.
        warning("k3s_cluster: ${certname} exports no join information for cluster ${cluster} in this catalog: ${why}")
      }
    }
  } elsif $node_type == 'server' {
    file { '/etc/facter/facts.d/k3s_server_info.yaml':
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0600',
      content => "# Managed by Puppet (k3s_cluster).\nk3s_server_info:\n  cluster_name: ${cluster}\n  auto_token_sharing: false\n",
    }
  }

  # Nothing to start or join yet: say so in the run's output; past token_timeout, fail the run.
  if $action == 'candidate' or ($action == 'wait' and !$plan['expired']) {
    notify { 'k3s_cluster':
      message => $plan['message'],
    }
  } elsif $action == 'wait' {
    exec { 'k3s_cluster: nothing to join':
      command   => ['/bin/sh', '-c', 'printf "%s\n" "$1" >&2; exit 1', 'k3s_cluster', $plan['message']],
      logoutput => true,
    }
  }

  $collects = $action == 'collect' or ($action == 'join' and ($node_type == 'agent' or !$facts.dig('k3s_cluster_node', 'has_data')))
  if $action in ['join', 'joined'] and $k3s_cluster::collect_from == 'puppetserver' {
    $record_before = $collects ? { true => { 'before' => Exec['k3s_cluster collect cluster info'] }, default => {} }
    # The verified servers' records, tokens sealed to this node and opened on it (Deferred): root 0600
    # files in $info_dir. Records of servers that no longer export are removed.
    $plan['records'].each |$r| {
      $server_token = $r['server_token'] ? {
        undef   => {},
        default => { 'server_token' => Deferred('k3s_cluster::unseal', [$r['server_token']]) },
      }
      k3s_cluster_info { $r['title']:
        ensure        => present,
        cluster_name  => $cluster,
        server_url    => $r['server_url'],
        role          => 'server',
        ca_hash       => $r['ca_hash'],
        agent_token   => Deferred('k3s_cluster::unseal', [$r['agent_token']]),
        token_timeout => $k3s_cluster::token_timeout,
        info_dir      => $info_dir,
        *             => $server_token + $record_before,
      }
    }
    resources { 'k3s_cluster_info':
      purge => true,
    }
  }

  if $collects {
    file { '/usr/local/bin/k3s-collect-cluster-info.sh':
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0700',
      content => epp('k3s_cluster/collect-cluster-info.sh.epp', {
          'cluster_name'   => $cluster,
          'role'           => $node_type,
          'certname'       => $certname,
          'source'         => $k3s_cluster::collect_from,
          'wait_for_token' => $k3s_cluster::wait_for_token,
          'token_timeout'  => $k3s_cluster::token_timeout,
          'puppetdb_url'   => $k3s_cluster::puppetdb_url,
      }),
    }
    # Picks a server — the one already in use while it answers, else the first by this node's ranking that
    # answers — and writes the join token file (0600) and config.yaml.d/50-cluster-join.yaml.
    exec { 'k3s_cluster collect cluster info':
      command   => '/usr/local/bin/k3s-collect-cluster-info.sh --apply',
      unless    => '/usr/local/bin/k3s-collect-cluster-info.sh --check',
      timeout   => $k3s_cluster::token_timeout + 30,
      logoutput => true,
      require   => File['/usr/local/bin/k3s-collect-cluster-info.sh', '/etc/facter/facts.d'],
    }
  }
}
