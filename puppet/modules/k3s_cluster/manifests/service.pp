# @summary Runs the k3s unit, bounded by token_timeout, restarting it when its configuration changed. On a
#   sharing server, the seven-step check (`k3s-cluster-check`) then waits for k3s and names the step that
#   fails; its ✅/❌ lines are the run's output.
# @api private
class k3s_cluster::service {
  $unit = $k3s_cluster::unit
  $sharing_server = $k3s_cluster::sharing and $k3s_cluster::node_type == 'server'
  $path = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

  # A sharing server waits in the check instead, which says which step it is waiting for.
  $wait = ($k3s_cluster::wait_for_service and !$sharing_server) ? { true => $k3s_cluster::token_timeout, default => 0 }

  if $k3s_cluster::ensure == 'present' {
    file { '/usr/local/sbin/k3s-cluster-start':
      ensure => file,
      owner  => 'root',
      group  => 'root',
      mode   => '0755',
      source => 'puppet:///modules/k3s_cluster/k3s-cluster-start.sh',
    }
    if $k3s_cluster::node_type == 'server' {
      # The seven-step check (steps 2-7 run locally) and the whole-cluster check, as commands on every server.
      file { '/usr/local/sbin/k3s-cluster-check':
        ensure => file,
        owner  => 'root',
        group  => 'root',
        mode   => '0755',
        source => 'puppet:///modules/k3s_cluster/k3s-cluster-check.sh',
      }
      file { '/usr/local/sbin/k3s-cluster-verify-cluster':
        ensure => file,
        owner  => 'root',
        group  => 'root',
        mode   => '0755',
        source => 'puppet:///modules/k3s_cluster/k3s-cluster-verify-cluster.sh',
      }
    }
    if $k3s_cluster::start {
      exec { "k3s_cluster start ${unit}":
        command   => "/usr/local/sbin/k3s-cluster-start ${unit} ${wait}",
        unless    => "/usr/local/sbin/k3s-cluster-start --check ${unit}",
        path      => $path,
        timeout   => $k3s_cluster::token_timeout + 30,
        logoutput => true,
        require   => File['/usr/local/sbin/k3s-cluster-start'],
      }
      if $sharing_server {
        $check = join([
            '/usr/local/sbin/k3s-cluster-check',
            "--data-dir ${k3s_cluster::data_dir}",
            "--node-name ${k3s_cluster::node_name}",
        ], ' ')
        # Runs only when a quick pass (no waiting) fails: then it waits up to token_timeout and prints a
        # line per step. A server that fails a step fails this run; its next catalog exports nothing (the
        # k3s_cluster_export fact runs the same check).
        exec { 'k3s_cluster seven-step check':
          command   => "${check} --timeout ${k3s_cluster::token_timeout}",
          unless    => "${check} --timeout 0",
          path      => $path,
          timeout   => $k3s_cluster::token_timeout + 30,
          logoutput => true,
          require   => [Exec["k3s_cluster start ${unit}"], File['/usr/local/sbin/k3s-cluster-check']],
        }
      }
    }
  } else {
    exec { "k3s_cluster stop ${unit}":
      command => "systemctl disable --now ${unit}",
      onlyif  => "systemctl is-enabled ${unit} || systemctl is-active ${unit}",
      path    => ['/usr/bin', '/bin'],
    }
  }
}
