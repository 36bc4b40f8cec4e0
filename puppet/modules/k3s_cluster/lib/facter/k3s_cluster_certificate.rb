# frozen_string_literal: true

# This node's Puppet certificate (PEM, public). The puppetserver seals the k3s tokens it puts in this node's
# catalog to it (k3s_cluster::seal); it accepts it only when its CA signed it for this node's certname.
Facter.add(:k3s_cluster_certificate) do
  confine kernel: 'Linux'
  setcode do
    if defined?(Puppet) && Puppet.respond_to?(:[])
      path = Puppet[:hostcert]
      File.read(path) if File.file?(path) && File.readable?(path)
    end
  end
end
