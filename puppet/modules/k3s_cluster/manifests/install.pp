# @summary Puts the k3s binary and its systemd unit on the node, without starting it.
# @api private
class k3s_cluster::install {
  $unit = $k3s_cluster::unit
  $command = $k3s_cluster::node_type

  case $k3s_cluster::install_method {
    'binary': {
      $checksum = $k3s_cluster::binary_sha256 ? {
        undef   => {},
        default => { 'checksum' => 'sha256', 'checksum_value' => $k3s_cluster::binary_sha256 },
      }
      file { '/usr/local/bin/k3s':
        ensure => file,
        source => $k3s_cluster::binary_source,
        owner  => 'root',
        group  => 'root',
        mode   => '0755',
        *      => $checksum,
      }
      # The same unit k3s's install script writes, so the node looks alike whichever way k3s came.
      file { "/etc/systemd/system/${unit}.service":
        ensure  => file,
        owner   => 'root',
        group   => 'root',
        mode    => '0644',
        content => epp('k3s_cluster/k3s.service.epp', { 'command' => $command }),
        notify  => Exec['k3s_cluster daemon-reload'],
      }
      exec { 'k3s_cluster daemon-reload':
        command     => 'systemctl daemon-reload',
        path        => ['/usr/bin', '/bin'],
        refreshonly => true,
      }
    }
    'script': {
      # No token reaches the install script: it only installs; k3s reads the token from config.yaml's
      # token-file when the service starts.
      exec { 'k3s_cluster download install script':
        command => "curl -sfL --retry 3 -o /usr/local/bin/k3s-install.sh ${k3s_cluster::install_script_url}",
        creates => '/usr/local/bin/k3s-install.sh',
        path    => ['/usr/bin', '/bin'],
      }
      -> exec { 'k3s_cluster install k3s':
        command     => "sh /usr/local/bin/k3s-install.sh ${command}",
        environment => [
          "INSTALL_K3S_VERSION=${k3s_cluster::k3s_version}",
          'INSTALL_K3S_SKIP_START=true',
          'INSTALL_K3S_SKIP_ENABLE=true',
        ],
        unless      => join([
            'test -x /usr/local/bin/k3s',
            "/usr/local/bin/k3s --version | grep -qF '${k3s_cluster::k3s_version}'",
            "test -f /etc/systemd/system/${unit}.service",
        ], ' && '),
        path        => ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'],
        timeout     => 600,
      }
    }
    default: {}
  }
}
