# frozen_string_literal: true

require 'spec_helper'

describe 'k3s_cluster' do
  let(:node) { 'node1.example.test' }

  def config_yaml
    catalogue.resource('File', '/etc/rancher/k3s/config.yaml')[:content]
  end

  context 'the seed\'s server example (automatic token sharing)' do
    let(:params) { { node_type: 'server', cluster_init: true, cluster_name: 'my-cluster', auto_token_sharing: true } }

    it { is_expected.to compile.with_all_deps }
    it { is_expected.to contain_file('/etc/rancher/k3s/config.yaml').with(owner: 'root', mode: '0600') }
    it { is_expected.to contain_exec('k3s_cluster agent token password').with_creates('/etc/rancher/k3s/agent-token-password') }
    it { is_expected.to contain_exec('k3s_cluster download install script') }
    it { is_expected.to contain_exec('k3s_cluster install k3s').with_environment(['INSTALL_K3S_VERSION=v1.34.3+k3s1', 'INSTALL_K3S_SKIP_START=true', 'INSTALL_K3S_SKIP_ENABLE=true']) }
    it { is_expected.to contain_exec('k3s_cluster start k3s').with_command('/usr/local/sbin/k3s-cluster-start k3s 300') }
    it { is_expected.to contain_file('/etc/facter/facts.d/k3s_server_info.yaml').with_mode('0600').with_content(%r{exported: false}) }

    it 'configures cluster-init and a separate agent token, and no token in config.yaml' do
      expect(config_yaml).to match(%r{^cluster-init: true$})
      expect(config_yaml).to match(%r{^agent-token-file: "?/etc/rancher/k3s/agent-token-password"?$})
      expect(config_yaml).not_to match(%r{^token:})
    end

    context 'before k3s has written its agent token' do
      subject { exported_resources }

      it { is_expected.not_to contain_k3s_cluster_info('my-cluster-node1.example.test') }
    end

    context 'once the agent token exists' do
      subject { exported_resources }

      let(:facts) { { 'k3s_cluster_export' => { 'ca_hash' => 'a' * 64, 'agent_token' => AGENT_TOKEN, 'server_token' => SERVER_TOKEN } } }

      it 'exports the agent-scoped token only' do
        is_expected.to contain_k3s_cluster_info('my-cluster-node1.example.test').with(
          cluster_name: 'my-cluster', server_url: 'https://10.0.1.10:6443', role: 'server',
          ca_hash: 'a' * 64, agent_token: AGENT_TOKEN, server_token: nil
        )
      end
    end

    context 'with share_server_token' do
      subject { exported_resources }

      let(:params) { super().merge(share_server_token: true, server_address: 'k3s.example.test') }
      let(:facts) { { 'k3s_cluster_export' => { 'ca_hash' => 'a' * 64, 'agent_token' => AGENT_TOKEN, 'server_token' => SERVER_TOKEN } } }

      it { is_expected.to contain_k3s_cluster_info('my-cluster-node1.example.test').with(server_token: SERVER_TOKEN, server_url: 'https://k3s.example.test:6443') }
    end
  end

  context 'the seed\'s agent example (automatic token sharing)' do
    let(:params) { { node_type: 'agent', cluster_name: 'my-cluster', auto_token_sharing: true } }

    it { is_expected.to compile.with_all_deps }
    it { is_expected.to contain_file('/usr/local/bin/k3s-collect-cluster-info.sh').with(owner: 'root', mode: '0700').with_content(%r{^cluster=my-cluster$}) }
    it { is_expected.to contain_exec('k3s_cluster collect cluster info').that_comes_before('Exec[k3s_cluster start k3s-agent]') }
    it { is_expected.to contain_exec('k3s_cluster start k3s-agent') }
    it { is_expected.not_to contain_exec('k3s_cluster agent token password') }

    it 'leaves server and token to the collection script' do
      expect(config_yaml).not_to match(%r{^(server|token|token-file):})
    end

    context 'exports' do
      subject { exported_resources }

      it { is_expected.not_to contain_k3s_cluster_info('my-cluster-node1.example.test') }
    end
  end

  context 'manual mode with a Sensitive token' do
    let(:params) do
      { node_type: 'agent', cluster_name: 'demo', auto_token_sharing: false, server_url: 'https://10.0.1.10:6443',
        token: sensitive(SERVER_TOKEN) }
    end

    it { is_expected.to contain_file('/etc/rancher/k3s/cluster-token').with(owner: 'root', mode: '0600', show_diff: false) }
    it { is_expected.not_to contain_file('/usr/local/bin/k3s-collect-cluster-info.sh') }

    it 'points k3s at the token file and keeps the token out of config.yaml' do
      expect(config_yaml).to match(%r{^token-file: "?/etc/rancher/k3s/cluster-token"?$})
      expect(config_yaml).to match(%r{^server: "?https://10.0.1.10:6443"?$})
      expect(config_yaml).not_to include('c' * 32)
    end

    context 'exports' do
      subject { exported_resources }

      it { is_expected.not_to contain_k3s_cluster_info('demo-node1.example.test') }
    end
  end

  context 'as the Pulumi program applies it (token_file, binary install, no wait on servers)' do
    let(:params) do
      { node_type: 'server', cluster_init: false, cluster_name: 'demo', auto_token_sharing: false,
        token_file: '/etc/rancher/k3s/cluster-token', server_url: 'https://10.0.1.10:6443', k3s_version: 'v1.34.3+k3s1',
        install_method: 'binary', binary_source: 'http://198.51.100.1:8080/k3s', binary_sha256: 'f' * 64,
        token_timeout: 120, wait_for_service: false, node_name: 'demo-server-1', tls_san: ['203.0.113.10'] }
    end

    it { is_expected.to compile.with_all_deps }
    it { is_expected.to contain_file('/usr/local/bin/k3s').with(source: 'http://198.51.100.1:8080/k3s', checksum: 'sha256', checksum_value: 'f' * 64, mode: '0755') }
    it { is_expected.to contain_file('/etc/systemd/system/k3s.service').with_content(%r{^Type=notify$}).with_content(%r{^ExecStart=/usr/local/bin/k3s server$}) }
    it { is_expected.to contain_exec('k3s_cluster start k3s').with_command('/usr/local/sbin/k3s-cluster-start k3s 0') }
    it { is_expected.not_to contain_exec('k3s_cluster install k3s') }
    it { is_expected.not_to contain_file('/etc/rancher/k3s/cluster-token') }

    it 'joins the given server with the given token file' do
      expect(config_yaml).to match(%r{^server: "?https://10.0.1.10:6443"?$})
      expect(config_yaml).to match(%r{^token-file: "?/etc/rancher/k3s/cluster-token"?$})
      expect(config_yaml).to match(%r{^node-name: "?demo-server-1"?$})
      expect(config_yaml).to match(%r{^tls-san:\n- "?203.0.113.10"?$})
      expect(config_yaml).not_to match(%r{^cluster-init:})
    end
  end

  context 'extra k3s configuration' do
    let(:params) { { config: { 'node-label' => ['tier=edge'], 'write-kubeconfig-mode' => '0640' } } }

    it 'merges it over the module\'s keys' do
      expect(config_yaml).to match(%r{^node-label:\n- tier=edge$})
      expect(config_yaml).to match(%r{^write-kubeconfig-mode: '0640'$})
    end
  end

  context 'ensure => absent' do
    let(:params) { { ensure: 'absent' } }

    it { is_expected.to contain_exec('k3s_cluster stop k3s').with_command('systemctl disable --now k3s') }
    it { is_expected.not_to contain_file('/etc/rancher/k3s/config.yaml') }
  end

  context 'refused parameters' do
    {
      'token and token_file together' => [{ node_type: 'agent', server_url: 'https://s:6443', token: RSpec::Puppet::Sensitive.new('x' * 20), token_file: '/t' }, %r{token and token_file \(/t\) are both set}],
      'an agent in manual mode without server_url' => [{ node_type: 'agent', token_file: '/t' }, %r{server_url is not set; an agent in manual mode}],
      'an agent in manual mode without a token' => [{ node_type: 'agent', server_url: 'https://s:6443' }, %r{neither token nor token_file is set}],
      'an agent with cluster_init' => [{ node_type: 'agent', cluster_init: true, auto_token_sharing: true }, %r{cluster_init is true but node_type is agent}],
      'cluster_init with server_url' => [{ cluster_init: true, server_url: 'https://s:6443', token_file: '/t' }, %r{cluster_init is true and server_url is https://s:6443}],
      'a token with automatic sharing' => [{ auto_token_sharing: true, token_file: '/t' }, %r{auto_token_sharing is true but a token or token_file is given}],
      'binary install without a source' => [{ install_method: 'binary' }, %r{install_method is 'binary' but binary_source is not set}],
      'an http binary without sha256' => [{ install_method: 'binary', binary_source: 'http://mirror/k3s' }, %r{binary_source is http://mirror/k3s, a plain http URL, but binary_sha256 is not set}],
      'binary_source with the script install' => [{ binary_source: '/srv/k3s' }, %r{binary_source is /srv/k3s but install_method is 'script'}],
      'token_timeout out of range' => [{ token_timeout: 20 }, %r{token_timeout.*expects an Integer\[30, 600\] value, got Integer\[20, 20\]}],
      'a cluster_name that is no DNS label' => [{ cluster_name: 'My_Cluster' }, %r{cluster_name.*expects a match for Pattern}],
      'an http server_url' => [{ node_type: 'agent', server_url: 'http://s:6443', token_file: '/t' }, %r{'server_url' expects an undef value or a match for Pattern}],
      'a k3s_version without +k3s' => [{ k3s_version: '1.34.3' }, %r{k3s_version.*expects a match for Pattern}],
    }.each do |what, (params, message)|
      context what do
        let(:params) { params }

        it { is_expected.to compile.and_raise_error(message) }
      end
    end
  end
end
