# frozen_string_literal: true

require 'spec_helper'
require 'tmpdir'
require 'yaml'

describe Puppet::Type.type(:k3s_cluster_info).provider(:ruby) do
  around(:each) do |example|
    Dir.mktmpdir do |dir|
      @dir = File.join(dir, 'cluster-info')
      example.run
    end
  end

  let(:resource) do
    Puppet::Type.type(:k3s_cluster_info).new(
      name: 'demo-node1', cluster_name: 'demo', server_url: 'https://10.0.1.10:6443', role: 'server',
      ca_hash: 'a' * 64, agent_token: AGENT_TOKEN, info_dir: @dir, provider: :ruby,
    )
  end
  let(:provider) { resource.provider }
  let(:path) { File.join(@dir, 'demo-node1.yaml') }

  it 'writes the record to a root-only file in a root-only directory' do
    expect(provider.exists?).to be(false)
    provider.create
    provider.flush
    expect(File.stat(path).mode & 0o777).to eq(0o600)
    expect(File.stat(@dir).mode & 0o777).to eq(0o700)
    expect(YAML.safe_load(File.read(path))).to eq(
      'cluster_name' => 'demo', 'server_url' => 'https://10.0.1.10:6443', 'role' => 'server',
      'ca_hash' => 'a' * 64, 'agent_token' => AGENT_TOKEN,
    )
    expect(provider.exists?).to be(true)
  end

  it 'reads back what it wrote, so an unchanged record is in sync' do
    provider.create
    provider.flush
    fresh = Puppet::Type.type(:k3s_cluster_info).new(resource.to_hash.merge(provider: :ruby)).provider
    expect(fresh.agent_token).to eq(AGENT_TOKEN)
    expect(fresh.server_url).to eq('https://10.0.1.10:6443')
  end

  it 'removes the file on destroy' do
    provider.create
    provider.flush
    provider.destroy
    expect(File.exist?(path)).to be(false)
  end

  describe 'instances (puppet resource k3s_cluster_info)' do
    before(:each) { allow(described_class).to receive(:default_dir).and_return(@dir) }

    it 'lists every record on the node with its tokens redacted' do
      provider.create
      provider.flush
      found = described_class.instances
      expect(found.map(&:name)).to eq(['demo-node1'])
      listed = found.first
      expect(listed.exists?).to be(true)
      expect(listed.server_url).to eq('https://10.0.1.10:6443')
      expect(listed.ca_hash).to eq('a' * 64)
      expect(listed.agent_token).to eq('[redacted]')
      expect(listed.server_token).to eq(:absent)
    end

    it 'renders as a manifest without any token (what puppet resource prints)' do
      provider.create
      provider.flush
      request = Puppet::Indirector::Request.new(:resource, :search, 'k3s_cluster_info', nil)
      text = Puppet::Resource.indirection.terminus(:ral).search(request).map(&:to_manifest).join
      expect(text).to match(%r{^  agent_token +=> '\[redacted\]',$})
      expect(text).to match(%r{^  server_url +=> 'https://10.0.1.10:6443',$})
      expect(text).not_to match(%r{=> ,})
      expect(text).not_to include('b' * 32)
    end

    it 'is empty without records' do
      expect(described_class.instances).to eq([])
    end
  end
end
