# frozen_string_literal: true

require 'open3'
require 'time'
require 'yaml'
require_relative '../puppet_x/k3s_cluster/sealing'

# What an automatically sharing k3s server may export, gated on the seven-step check.
#
# Only on servers the module set up for sharing (/var/lib/k3s-cluster/state.yaml says `share: true`), and
# only as root. It runs the module's `k3s-cluster-check` once (steps 2–7, no waiting) before every catalog
# is compiled, so a server exports join information only while it passes every step; when a step fails
# the fact names it and carries no token. The tokens are sealed to the certificate of the puppetserver that
# compiled this node's catalog (/var/lib/k3s-cluster/sealing-cert.pem): facts travel to the puppetserver and
# PuppetDB, so they hold ciphertext only that this puppetserver can open.
Facter.add(:k3s_cluster_export) do
  confine kernel: 'Linux'
  setcode do
    sealing = PuppetX::K3sCluster::Sealing
    state_file = '/var/lib/k3s-cluster/state.yaml'
    check = '/usr/local/sbin/k3s-cluster-check'
    state = begin
      YAML.safe_load(File.read(state_file))
    rescue StandardError
      nil
    end
    next nil unless state.is_a?(Hash) && state['share'] == true && Process.uid.zero? && File.executable?(check)

    data_dir = state['data_dir'] || '/var/lib/rancher/k3s'
    args = [check, '--timeout', '0', '--data-dir', data_dir]
    args += ['--node-name', state['node_name']] if state['node_name']
    out, status = Open3.capture2e({ 'LC_ALL' => 'C' }, *args, stdin_data: '')
    out = out.dup.force_encoding(Encoding::UTF_8).scrub
    result = { 'cluster_name' => state['cluster_name'], 'checked_at' => Time.now.utc.iso8601, 'verified' => status.success? }
    unless status.success?
      failed = out.each_line.map(&:strip).reverse.find { |l| l.start_with?("\u274C") }
      result['failed_step'] = (failed || out.each_line.to_a.last.to_s.strip)[0, 400]
      next result
    end

    read = ->(name) { File.read(File.join(data_dir, 'server', name)).strip rescue '' } # rubocop:disable Style/RescueModifier
    server_token = read.call('token')
    agent_token = read.call('agent-token')
    agent = PuppetX::K3sCluster::TOKEN.match(agent_token)
    server = PuppetX::K3sCluster::TOKEN.match(server_token)
    unless agent && agent[2] == 'node' && server && server[2] == 'server' && server[1] == agent[1]
      result['verified'] = false
      result['failed_step'] = 'the check passed, but server/agent-token is not a separate K10<CA hash>::node:<password> token of the same CA ' \
                              '(k3s_cluster configures agent-token-file on sharing servers)'
      next result
    end
    result['ca_hash'] = agent[1]

    cert_file = '/var/lib/k3s-cluster/sealing-cert.pem'
    begin
      cert = sealing.read_certificate(cert_file)
      store = OpenSSL::X509::Store.new
      store.add_file(Puppet[:localcacert]) if defined?(Puppet) && Puppet.respond_to?(:[])
      raise PuppetX::K3sCluster::Sealing::Error, "#{cert_file} is not signed by this node's Puppet CA" unless store.verify(cert)
      result['sealed_for'] = sealing.common_name(cert)
      result['sealed_agent_token'] = sealing.seal(agent_token, cert)
      result['sealed_server_token'] = sealing.seal(server_token, cert)
    rescue Errno::ENOENT
      nil # the first run writes the puppetserver's certificate; tokens are sealed from the next run on
    rescue PuppetX::K3sCluster::Sealing::Error, OpenSSL::OpenSSLError => e
      result['seal_error'] = e.message
    end
    result
  end
end
