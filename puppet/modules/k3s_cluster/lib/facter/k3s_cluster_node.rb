# frozen_string_literal: true

require 'yaml'

# What the puppetserver needs to know about this node's k3s when it plans the next catalog (no secret):
# the role the module gave it in its cluster (`init`, `join`, or still waiting), since when it waits, whether
# the node already holds a cluster's data, and whether it joined through a server.
Facter.add(:k3s_cluster_node) do
  confine kernel: 'Linux'
  setcode do
    state = begin
      YAML.safe_load(File.read('/var/lib/k3s-cluster/state.yaml'))
    rescue StandardError
      nil
    end
    state = {} unless state.is_a?(Hash)
    data_dir = state['data_dir'] || '/var/lib/rancher/k3s'
    node = state.select { |k, _| ['cluster_name', 'node_type', 'role', 'waiting_since'].include?(k) }
    node['has_data'] = File.exist?(File.join(data_dir, 'server', 'tls', 'server-ca.crt'))
    node['joined'] = File.exist?('/etc/rancher/k3s/config.yaml.d/50-cluster-join.yaml')
    node
  end
end
