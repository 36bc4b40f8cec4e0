# frozen_string_literal: true

# What a server may export for its cluster: the CA hash and the agent-scoped token (and the server token
# only when the node is flagged to share it). Absent until k3s has written its agent token.
#
# The value travels to the Puppet server and PuppetDB like every fact, so it holds nothing the export
# itself would not: see the module README, "Security".
Facter.add(:k3s_cluster_export) do
  confine kernel: 'Linux'
  setcode do
    data_dir = '/var/lib/rancher/k3s'
    config = '/etc/rancher/k3s/config.yaml'
    if File.readable?(config)
      m = File.read(config).match(%r{^data-dir:\s*["']?([^"'\n]+)["']?\s*$})
      data_dir = m[1].strip if m
    end
    agent_file = File.join(data_dir, 'server', 'agent-token')
    agent_token = File.file?(agent_file) && File.readable?(agent_file) ? File.read(agent_file).strip : ''
    m = agent_token.match(%r{\AK10([0-9a-f]{64})::node:[A-Za-z0-9]+\z})
    if m
      export = { 'ca_hash' => m[1], 'agent_token' => agent_token }
      if File.exist?('/etc/rancher/k3s/share-server-token')
        server_file = File.join(data_dir, 'server', 'token')
        server_token = File.file?(server_file) ? File.read(server_file).strip : ''
        export['server_token'] = server_token if server_token.start_with?("K10#{m[1]}::server:")
      end
      export
    end
  end
end
