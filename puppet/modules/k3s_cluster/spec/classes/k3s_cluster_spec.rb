# frozen_string_literal: true

require 'spec_helper'

describe 'k3s_cluster' do
  let(:node) { 'node1.example.test' }
  let(:now) { Time.now.to_i }

  before(:each) { puppetdb_answers([]) }

  def config_yaml
    catalogue.resource('File', '/etc/rancher/k3s/config.yaml')[:content]
  end

  def state_yaml
    catalogue.resource('File', '/var/lib/k3s-cluster/state.yaml')[:content]
  end

  # The catalog as the node caches it: Deferred values unresolved (see spec_helper).
  def cached_catalog
    catalogue.instance_variable_get(:@k3s_spec_cached)
  end

  # The resources of the cached catalog of one type, by title.
  def cached_resources(type)
    JSON.parse(cached_catalog)['resources'].select { |r| r['type'] == type }.to_h { |r| [r['title'], r] }
  end

  def export_of(title)
    exported_resources.call.resource('K3s_cluster_info', title)
  end

  def own_export
    export_of('my-cluster-node1.example.test')
  end

  # The k3s_cluster_export fact of a server that passed the seven-step check, sealed to the puppetserver.
  def verified_fact(sealed_to: SpecPki::COMPILER)
    { 'cluster_name' => 'my-cluster', 'checked_at' => '2025-01-01T00:00:00Z', 'verified' => true, 'ca_hash' => HASH,
      'sealed_for' => 'puppet.example.test', 'sealed_agent_token' => SpecPki.seal(AGENT_TOKEN, sealed_to),
      'sealed_server_token' => SpecPki.seal(SERVER_TOKEN, sealed_to) }
  end

  context 'the compile-time query' do
    let(:params) { { node_type: 'agent', cluster_name: 'my-cluster', auto_token_sharing: true } }

    it 'asks PuppetDB for the exported records of its own cluster only' do
      expect(Puppet::Util::Puppetdb).to receive(:query_puppetdb)
        .with(['from', 'resources', ['and', ['=', 'type', 'K3s_cluster_info'], ['=', 'exported', true], ['=', ['parameter', 'cluster_name'], 'my-cluster']]])
        .and_return([])
      is_expected.to compile
    end
  end

  context 'the seed\'s server example (cluster_init, automatic token sharing)' do
    let(:params) { { node_type: 'server', cluster_init: true, cluster_name: 'my-cluster', auto_token_sharing: true } }

    it { is_expected.to compile.with_all_deps }
    it { is_expected.to contain_file('/etc/rancher/k3s/config.yaml').with(owner: 'root', mode: '0600') }
    it { is_expected.to contain_exec('k3s_cluster agent token password').with_creates('/etc/rancher/k3s/agent-token-password') }
    it { is_expected.to contain_exec('k3s_cluster install k3s').with_environment(['INSTALL_K3S_VERSION=v1.34.3+k3s1', 'INSTALL_K3S_SKIP_START=true', 'INSTALL_K3S_SKIP_ENABLE=true']) }
    it { is_expected.to contain_exec('k3s_cluster start k3s').with_command('/usr/local/sbin/k3s-cluster-start k3s 0') }
    it { is_expected.to contain_file('/usr/local/sbin/k3s-cluster-check').with(source: 'puppet:///modules/k3s_cluster/k3s-cluster-check.sh', mode: '0755') }
    it { is_expected.to contain_file('/usr/local/sbin/k3s-cluster-verify-cluster').with_source('puppet:///modules/k3s_cluster/k3s-cluster-verify-cluster.sh') }
    it { is_expected.to contain_file('/var/lib/k3s-cluster/sealing-cert.pem').with_content(SpecPki::COMPILER.to_pem).with_mode('0644') }
    it { is_expected.to contain_file('/etc/facter/facts.d/k3s_server_info.yaml').with_mode('0600').with_content(%r{exported: false}) }
    it { is_expected.not_to contain_notify('k3s_cluster') }

    it 'runs the seven-step check after starting k3s, waiting up to token_timeout only when a quick pass fails' do
      is_expected.to contain_exec('k3s_cluster seven-step check').with(
        command: '/usr/local/sbin/k3s-cluster-check --data-dir /var/lib/rancher/k3s --node-name node1 --timeout 300',
        unless: '/usr/local/sbin/k3s-cluster-check --data-dir /var/lib/rancher/k3s --node-name node1 --timeout 0',
        logoutput: true,
      ).that_requires('Exec[k3s_cluster start k3s]')
    end

    it 'configures cluster-init and a separate agent token, and no token in config.yaml' do
      expect(config_yaml).to match(%r{^cluster-init: true$})
      expect(config_yaml).to match(%r{^agent-token-file: "?/etc/rancher/k3s/agent-token-password"?$})
      expect(config_yaml).not_to match(%r{^token:})
    end

    it 'records its role and what the export fact needs' do
      expect(state_yaml).to match(%r{^role: init$})
      expect(state_yaml).to match(%r{^share: true$})
      expect(state_yaml).to match(%r{^node_name: node1$})
    end

    context 'before it passed the seven-step check' do
      it 'exports its URL and status, but no join material' do
        expect(own_export[:status]).to eq('initialising')
        expect(own_export[:server_url]).to eq('https://10.0.1.10:6443')
        expect(own_export[:role]).to eq('server')
        [:agent_token, :server_token, :sealed_server_token, :ca_hash].each { |p| expect(own_export[p]).to be_nil }
      end
    end

    context 'when the seven-step check failed' do
      let(:facts) { { 'k3s_cluster_export' => { 'verified' => false, 'failed_step' => '❌ [7/7] API server accessible: timed out' } } }

      it 'exports no join material' do
        expect(own_export[:status]).to eq('initialising')
        expect(own_export[:agent_token]).to be_nil
      end
    end

    context 'once it passed the seven-step check' do
      let(:facts) { { 'k3s_cluster_export' => verified_fact } }

      it 'exports the agent-scoped token in clear and the server token sealed to the puppetserver only' do
        expect(own_export[:status]).to eq('verified')
        expect(own_export[:ca_hash]).to eq(HASH)
        expect(own_export[:agent_token]).to eq(AGENT_TOKEN)
        expect(own_export[:verified_at]).to eq('2025-01-01T00:00:00Z')
        expect(own_export[:server_token]).to be_nil
        expect(SpecPki.open(own_export[:sealed_server_token], 'puppet.example.test')).to eq(SERVER_TOKEN)
        expect(own_export.to_hash.values.map(&:to_s).join).not_to include('c' * 32)
      end

      it { is_expected.to contain_file('/etc/facter/facts.d/k3s_server_info.yaml').with_content(%r{exported: true}) }
    end

    context 'when its fact was sealed for another puppetserver' do
      let(:facts) { { 'k3s_cluster_export' => verified_fact(sealed_to: SpecPki::OTHER_NODE) } }

      it('exports no join material this time') { expect(own_export[:agent_token]).to be_nil }
    end

    context 'when another server already started the cluster' do
      before(:each) { puppetdb_answers([verified_row('node2.example.test')]) }

      it { is_expected.to compile.and_raise_error(%r{cluster_init is true, but node2.example.test already started cluster 'my-cluster'.*remove cluster_init}) }

      context 'and this node holds the cluster it started' do
        let(:facts) { { 'k3s_cluster_node' => { 'cluster_name' => 'my-cluster', 'role' => 'init', 'has_data' => true } } }

        it { is_expected.to compile.with_all_deps }
      end
    end
  end

  context 'the seed\'s agent example (automatic token sharing)' do
    let(:params) { { node_type: 'agent', cluster_name: 'my-cluster', auto_token_sharing: true } }

    context 'before any server of the cluster exported' do
      it { is_expected.to compile.with_all_deps }
      it { is_expected.to contain_notify('k3s_cluster').with_message(%r{no server of cluster 'my-cluster' has exported verified join information yet; k3s-agent is not started; waiting since .* \(0 s of token_timeout 300 s\)}) }
      it { is_expected.not_to contain_exec('k3s_cluster start k3s-agent') }
      it { is_expected.not_to contain_exec('k3s_cluster collect cluster info') }
      it { is_expected.not_to contain_exec('k3s_cluster agent token password') }
      it('records since when it waits') { expect(state_yaml).to match(%r{^waiting_since: \d+$}) }
      it('exports its node name and role, no token') { expect(own_export.to_hash).to include(role: 'agent', node_name: 'node1', status: 'waiting') }
    end

    context 'while it waits, within token_timeout' do
      let(:facts) { { 'k3s_cluster_node' => { 'cluster_name' => 'my-cluster', 'waiting_since' => Time.now.to_i - 100 } } }

      it { is_expected.to contain_notify('k3s_cluster').with_message(%r{\(10\d s of token_timeout 300 s\): a later Puppet run joins}) }
    end

    context 'once token_timeout has passed since it began waiting' do
      let(:facts) { { 'k3s_cluster_node' => { 'cluster_name' => 'my-cluster', 'waiting_since' => Time.now.to_i - 400 } } }

      it 'fails the run, saying what it waited for and how long' do
        is_expected.to contain_exec('k3s_cluster: nothing to join').with_command(
          ['/bin/sh', '-c', 'printf "%s\n" "$1" >&2; exit 1', 'k3s_cluster', %r{waited 40\d s since .*, more than token_timeout \(300 s\); k3s-agent is not started}],
        )
        is_expected.not_to contain_notify('k3s_cluster')
      end
    end

    context 'with wait_for_token => false' do
      let(:params) { super().merge(wait_for_token: false) }

      it 'fails the run at once' do
        expect(catalogue.resource('Exec', 'k3s_cluster: nothing to join')[:command].last).to match(%r{k3s-agent is not started \(wait_for_token is false\)})
      end
    end

    context 'once servers exported verified join information' do
      before(:each) do
        puppetdb_answers([
                           verified_row('node2.example.test', url: 'https://10.0.1.20:6443'),
                           verified_row('node3.example.test', url: 'https://10.0.1.30:6443'),
                           export_row('node4.example.test', 'server_url' => 'https://10.0.1.40:6443', 'status' => 'initialising'),
                           export_row('node5.example.test', 'role' => 'agent', 'node_name' => 'node5', 'status' => 'joining'),
                         ])
      end

      it { is_expected.to compile.with_all_deps }
      it { is_expected.not_to contain_notify('k3s_cluster') }
      it { is_expected.to contain_file('/usr/local/bin/k3s-collect-cluster-info.sh').with(owner: 'root', mode: '0700').with_content(%r{^certname=node1.example.test$}).with_content(%r{never talks to PuppetDB}) }
      it { is_expected.to contain_exec('k3s_cluster collect cluster info').that_comes_before('Exec[k3s_cluster start k3s-agent]') }
      it { is_expected.to contain_exec('k3s_cluster start k3s-agent').with_command('/usr/local/sbin/k3s-cluster-start k3s-agent 300') }
      it { is_expected.to contain_resources('k3s_cluster_info').with_purge(true) }
      it { is_expected.not_to contain_k3s_cluster_info('my-cluster-node4.example.test') }
      it { is_expected.to contain_k3s_cluster_info('my-cluster-node2.example.test').that_comes_before('Exec[k3s_cluster collect cluster info]') }

      it 'declares one record per verified server, its agent token sealed to this node only' do
        rec = catalogue.resource('K3s_cluster_info', 'my-cluster-node2.example.test')
        expect(rec[:server_url]).to eq('https://10.0.1.20:6443')
        expect(rec[:ca_hash]).to eq(HASH)
        expect(rec[:server_token]).to be_nil
        expect(rec[:agent_token]).to eq(AGENT_TOKEN) # resolved on the node, with its key
        expect(rec.sensitive_parameters).to include(:agent_token)
        cached = cached_resources('K3s_cluster_info')['my-cluster-node2.example.test']['parameters']['agent_token']
        expect(cached).to include('__ptype' => 'Deferred', 'name' => 'k3s_cluster::unseal')
        expect(SpecPki.open(cached['arguments'][0], 'node1.example.test')).to eq(AGENT_TOKEN)
        expect { SpecPki.open(cached['arguments'][0], 'node2.example.test') }.to raise_error(OpenSSL::PKCS7::PKCS7Error)
        expect(catalogue.resource('K3s_cluster_info', 'my-cluster-node3.example.test')[:server_url]).to eq('https://10.0.1.30:6443')
      end

      it 'puts no token in clear into the catalog the node caches' do
        expect(cached_catalog).to include('-----BEGIN PKCS7-----')
        expect(cached_catalog).not_to include('b' * 32)
      end

      context 'with a servers list' do
        let(:params) { super().merge(servers: ['node3.example.test']) }

        it('trusts only the records of the listed servers') { is_expected.not_to contain_k3s_cluster_info('my-cluster-node2.example.test') }
        it { is_expected.to contain_k3s_cluster_info('my-cluster-node3.example.test') }
      end
    end

    context 'already joined, when no server exports any more' do
      let(:facts) { { 'k3s_cluster_node' => { 'cluster_name' => 'my-cluster', 'joined' => true } } }

      it('keeps k3s-agent running as it is') { is_expected.to contain_exec('k3s_cluster start k3s-agent') }
      it { is_expected.not_to contain_notify('k3s_cluster') }
    end

    context 'collecting from PuppetDB itself (collect_from => puppetdb)' do
      let(:params) { super().merge(collect_from: 'puppetdb', puppetdb_url: 'https://puppetdb.example.test:8081') }

      it 'does not ask PuppetDB at compile time and leaves it to the script' do
        expect(Puppet::Util::Puppetdb).not_to receive(:query_puppetdb)
        is_expected.to contain_file('/usr/local/bin/k3s-collect-cluster-info.sh').with_content(%r{^puppetdb_url=https://puppetdb.example.test:8081$})
        is_expected.to contain_exec('k3s_cluster collect cluster info')
        is_expected.to contain_exec('k3s_cluster start k3s-agent')
      end
    end
  end

  context 'the seed\'s "Automatic Sequencing" server (no cluster_init, no server_url)' do
    let(:params) { { ensure: 'present', node_type: 'server', cluster_name: 'production', auto_token_sharing: true, token_timeout: 300 } }
    let(:node) { 'node1.example.test' }

    def row(certname, params)
      export_row(certname, { 'cluster_name' => 'production' }.merge(params))
    end

    context 'on its first run, alone' do
      it { is_expected.to compile.with_all_deps }
      it { is_expected.to contain_notify('k3s_cluster').with_message(%r{registered as a candidate; k3s is not started.*lowest certname starts the cluster}) }
      it { is_expected.not_to contain_exec('k3s_cluster start k3s') }
      it('exports itself as a candidate') { expect(export_of('production-node1.example.test')[:status]).to eq('candidate') }
      it { expect(config_yaml).not_to match(%r{cluster-init}) }
    end

    context 'on a later run, the only candidate' do
      before(:each) { puppetdb_answers([row('node1.example.test', 'status' => 'candidate', 'server_url' => 'https://10.0.1.10:6443')]) }

      it 'starts the cluster, as k3s starts a server without a server URL' do
        expect(config_yaml).to match(%r{^cluster-init: true$})
        is_expected.to contain_exec('k3s_cluster start k3s')
        is_expected.to contain_exec('k3s_cluster agent token password')
        expect(state_yaml).to match(%r{^role: init$})
      end
    end

    context 'with another candidate of a higher certname' do
      before(:each) do
        puppetdb_answers([row('node1.example.test', 'status' => 'candidate', 'server_url' => 'https://10.0.1.10:6443'),
                          row('node9.example.test', 'status' => 'candidate', 'server_url' => 'https://10.0.1.90:6443')])
      end

      it('starts the cluster (the lowest certname does)') { expect(config_yaml).to match(%r{^cluster-init: true$}) }
    end

    context 'with another candidate of a lower certname' do
      let(:node) { 'node2.example.test' }
      let(:facts) { { 'k3s_cluster_certificate' => SpecPki::OTHER_NODE.to_pem } }

      before(:each) do
        puppetdb_answers([row('node1.example.test', 'status' => 'candidate', 'server_url' => 'https://10.0.1.10:6443'),
                          row('node2.example.test', 'status' => 'candidate', 'server_url' => 'https://10.0.1.20:6443')])
      end

      it 'waits for it, still a candidate' do
        is_expected.to contain_notify('k3s_cluster').with_message(%r{waiting for node1.example.test \(the lowest certname among the candidate servers\) to start the cluster})
        is_expected.not_to contain_exec('k3s_cluster start k3s')
        expect(export_of('production-node2.example.test')[:status]).to eq('candidate')
      end
    end

    context 'when another server is already starting the cluster' do
      before(:each) { puppetdb_answers([row('node0.example.test', 'status' => 'initialising', 'server_url' => 'https://10.0.1.5:6443')]) }

      it { is_expected.to contain_notify('k3s_cluster').with_message(%r{waiting for node0.example.test to finish starting the cluster}) }
      it { is_expected.not_to contain_exec('k3s_cluster start k3s') }
    end

    context 'when a server of the cluster has exported verified join information' do
      before(:each) { puppetdb_answers([verified_row('node0.example.test', url: 'https://10.0.1.5:6443').tap { |r| r['parameters']['cluster_name'] = 'production' }]) }

      it 'joins it with the server token, sealed to this node' do
        rec = catalogue.resource('K3s_cluster_info', 'my-cluster-node0.example.test')
        expect(rec[:server_token]).to eq(SERVER_TOKEN)
        expect(rec[:agent_token]).to eq(AGENT_TOKEN)
        expect(cached_catalog).not_to include('c' * 32)
        is_expected.to contain_exec('k3s_cluster collect cluster info').with_unless('/usr/local/bin/k3s-collect-cluster-info.sh --check')
        is_expected.to contain_file('/usr/local/bin/k3s-collect-cluster-info.sh').with_content(%r{^role=server$})
        expect(config_yaml).not_to match(%r{cluster-init})
        expect(config_yaml).to match(%r{^agent-token-file: "?/etc/rancher/k3s/agent-token-password"?$})
        is_expected.not_to contain_exec('k3s_cluster agent token password')
        expect(state_yaml).to match(%r{^role: join$})
        expect(export_of('production-node1.example.test')[:status]).to eq('joining')
      end
    end

    context 'when the verified server\'s token is sealed for another puppetserver' do
      before(:each) do
        puppetdb_answers([verified_row('node0.example.test', sealed_server_token: SpecPki.seal(SERVER_TOKEN, SpecPki::OTHER_NODE))
          .tap { |r| r['parameters']['cluster_name'] = 'production' }])
      end

      it { is_expected.to contain_notify('k3s_cluster').with_message(%r{1 verified export\(s\) carry a server token sealed for another puppetserver}) }
    end

    context 'that joined before' do
      let(:facts) { { 'k3s_cluster_node' => { 'cluster_name' => 'production', 'role' => 'join', 'has_data' => true, 'joined' => true } } }

      before(:each) { puppetdb_answers([verified_row('node0.example.test').tap { |r| r['parameters']['cluster_name'] = 'production' }]) }

      it 'keeps its join as it is: no new pick of a server' do
        is_expected.to contain_exec('k3s_cluster start k3s')
        is_expected.not_to contain_exec('k3s_cluster collect cluster info')
      end
    end

    context 'with a servers list naming it first' do
      let(:params) { super().merge(servers: ['node1.example.test', 'node2.example.test']) }

      it('starts the cluster on its first run (no candidate run)') { expect(config_yaml).to match(%r{^cluster-init: true$}) }
    end

    context 'with a servers list naming another first' do
      let(:params) { super().merge(servers: ['node0.example.test', 'node1.example.test']) }

      it { is_expected.to contain_notify('k3s_cluster').with_message(%r{waiting for node0.example.test \(the first of servers\) to start the cluster}) }
    end

    context 'with a servers list that does not name it' do
      let(:params) { super().merge(servers: ['node0.example.test']) }

      it { is_expected.to compile.and_raise_error(%r{this node \(certname node1.example.test\) is not in servers \["node0.example.test"\]}) }
    end
  end

  context 'an HA server that only joins (cluster_init => false)' do
    let(:params) { { node_type: 'server', cluster_init: false, cluster_name: 'my-cluster', auto_token_sharing: true } }

    it 'never starts a cluster itself: it waits for a verified server' do
      puppetdb_answers([export_row('node0.example.test', 'server_url' => 'https://10.0.1.5:6443', 'status' => 'candidate')])
      is_expected.to contain_notify('k3s_cluster').with_message(%r{cluster_init is false: this server only joins})
      expect(own_export[:status]).to eq('waiting')
    end
  end

  context 'manual mode with a Sensitive token' do
    let(:params) do
      { node_type: 'agent', cluster_name: 'demo', auto_token_sharing: false, server_url: 'https://10.0.1.10:6443',
        token: sensitive(SERVER_TOKEN) }
    end

    it { is_expected.to contain_file('/etc/rancher/k3s/cluster-token').with(owner: 'root', mode: '0600', show_diff: false) }
    it { is_expected.not_to contain_file('/usr/local/bin/k3s-collect-cluster-info.sh') }

    it 'does not ask PuppetDB' do
      expect(Puppet::Util::Puppetdb).not_to receive(:query_puppetdb)
      is_expected.to compile.with_all_deps
    end

    it 'marks it sensitive wherever the catalog holds it (it is a class parameter: token_file keeps it out of catalogs)' do
      expect(cached_resources('Class')['K3s_cluster']['sensitive_parameters']).to eq(['token'])
      expect(cached_resources('File')['/etc/rancher/k3s/cluster-token']['sensitive_parameters']).to eq(['content'])
    end

    it 'points k3s at the token file and keeps the token out of config.yaml' do
      expect(config_yaml).to match(%r{^token-file: "?/etc/rancher/k3s/cluster-token"?$})
      expect(config_yaml).to match(%r{^server: "?https://10.0.1.10:6443"?$})
      expect(config_yaml).not_to include('c' * 32)
    end

    context 'exports' do
      it { expect(export_of('demo-node1.example.test')).to be_nil }
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
    it { is_expected.not_to contain_exec('k3s_cluster seven-step check') }
    it { is_expected.not_to contain_exec('k3s_cluster install k3s') }
    it { is_expected.not_to contain_file('/etc/rancher/k3s/cluster-token') }
    it { is_expected.not_to contain_file('/var/lib/k3s-cluster/sealing-cert.pem') }

    it 'joins the given server with the given token file' do
      expect(config_yaml).to match(%r{^server: "?https://10.0.1.10:6443"?$})
      expect(config_yaml).to match(%r{^token-file: "?/etc/rancher/k3s/cluster-token"?$})
      expect(config_yaml).to match(%r{^node-name: "?demo-server-1"?$})
      expect(config_yaml).to match(%r{^tls-san:\n- "?203.0.113.10"?$})
      expect(config_yaml).not_to match(%r{^cluster-init:})
      expect(config_yaml).not_to match(%r{agent-token-file})
    end
  end

  context 'as the Pulumi program prepares a node before its token exists (start_service => false)' do
    let(:params) do
      { node_type: 'agent', cluster_name: 'demo', auto_token_sharing: false, token_file: '/etc/rancher/k3s/cluster-token',
        server_url: 'https://10.0.1.10:6443', install_method: 'binary', binary_source: 'http://198.51.100.1:8080/k3s',
        binary_sha256: 'f' * 64, start_service: false }
    end

    it { is_expected.to compile.with_all_deps }
    it { is_expected.to contain_file('/usr/local/bin/k3s') }
    it { is_expected.to contain_file('/etc/systemd/system/k3s-agent.service') }
    it { is_expected.to contain_file('/usr/local/sbin/k3s-cluster-start') }
    it { is_expected.not_to contain_exec('k3s_cluster start k3s-agent') }

    it 'writes the configuration that names the token file' do
      expect(config_yaml).to match(%r{^token-file: "?/etc/rancher/k3s/cluster-token"?$})
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

  context 'k3s_version, from the table shared with the Pulumi program (tests/fixtures/k3s-versions.json)' do
    K3S_VERSIONS['accepted'].each do |v|
      context "accepts #{v.inspect}" do
        let(:params) { { k3s_version: v } }

        it { is_expected.to contain_exec('k3s_cluster install k3s').with_environment(["INSTALL_K3S_VERSION=#{v}", 'INSTALL_K3S_SKIP_START=true', 'INSTALL_K3S_SKIP_ENABLE=true']) }
      end
    end
    K3S_VERSIONS['refused'].each do |v|
      context "refuses #{v.inspect}" do
        let(:params) { { k3s_version: v } }

        it { is_expected.to compile.and_raise_error(%r{parameter 'k3s_version' expects a match for K3s_cluster::Version}) }
      end
    end
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
      'a server collecting from PuppetDB itself' => [{ auto_token_sharing: true, collect_from: 'puppetdb' }, %r{collect_from is 'puppetdb' but this is server with auto_token_sharing true; only agents}],
      'puppetdb_url without collect_from puppetdb' => [{ node_type: 'agent', auto_token_sharing: true, puppetdb_url: 'https://pdb:8081' }, %r{puppetdb_url is https://pdb:8081 but collect_from is 'puppetserver'}],
      'servers without automatic sharing' => [{ servers: ['s1'] }, %r{servers is \[s1\] but auto_token_sharing is false}],
    }.each do |what, (params, message)|
      context what do
        let(:params) { params }

        it { is_expected.to compile.and_raise_error(message) }
      end
    end
  end
end
