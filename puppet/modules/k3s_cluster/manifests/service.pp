# @summary Runs the k3s unit, bounded by token_timeout, restarting it when its configuration changed.
# @api private
class k3s_cluster::service {
  $unit = $k3s_cluster::unit

  $wait = $k3s_cluster::wait_for_service ? { true => $k3s_cluster::token_timeout, default => 0 }

  if $k3s_cluster::ensure == 'present' {
    file { '/usr/local/sbin/k3s-cluster-start':
      ensure => file,
      owner  => 'root',
      group  => 'root',
      mode   => '0755',
      source => 'puppet:///modules/k3s_cluster/k3s-cluster-start.sh',
    }
    -> exec { "k3s_cluster start ${unit}":
      command   => "/usr/local/sbin/k3s-cluster-start ${unit} ${wait}",
      unless    => "/usr/local/sbin/k3s-cluster-start --check ${unit}",
      path      => ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'],
      timeout   => $k3s_cluster::token_timeout + 30,
      logoutput => true,
    }
  } else {
    exec { "k3s_cluster stop ${unit}":
      command => "systemctl disable --now ${unit}",
      onlyif  => "systemctl is-enabled ${unit} || systemctl is-active ${unit}",
      path    => ['/usr/bin', '/bin'],
    }
  }
}
