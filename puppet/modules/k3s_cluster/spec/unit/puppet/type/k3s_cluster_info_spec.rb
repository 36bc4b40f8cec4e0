# frozen_string_literal: true

require 'spec_helper'

describe Puppet::Type.type(:k3s_cluster_info) do
  let(:valid) do
    { name: 'demo-node1', cluster_name: 'demo', server_url: 'https://10.0.1.10:6443', role: 'server',
      ca_hash: 'a' * 64, agent_token: AGENT_TOKEN }
  end

  it 'accepts a complete record' do
    expect { described_class.new(valid) }.not_to raise_error
  end

  it 'marks the tokens sensitive so logs and reports redact them' do
    record = described_class.new(valid.merge(server_token: SERVER_TOKEN))
    expect(record.parameter(:agent_token).sensitive).to be(true)
    expect(record.parameter(:server_token).sensitive).to be(true)
  end

  {
    cluster_name: ['Bad_Name', %r{cluster_name "Bad_Name" must be a DNS label}],
    server_url: ['http://10.0.1.10:6443', %r{server_url "http://10.0.1.10:6443" must be an https URL}],
    role: ['controller', %r{Invalid value "controller"}],
    ca_hash: ['abc', %r{ca_hash "abc" must be 64 lower-case hex digits}],
    agent_token: [SERVER_TOKEN, %r{agent_token must be a full k3s token K10<64 hex>::node:<password> \(value hidden\)}],
    server_token: ['short', %r{server_token must be a full k3s token}],
    token_timeout: [20, %r{token_timeout 20 must be an integer between 30 and 600}],
    status: ['ready', %r{Invalid value "ready"}],
    sealed_server_token: [SERVER_TOKEN, %r{sealed_server_token must be a PKCS7 PEM block}],
  }.each do |attr, (value, message)|
    it "refuses #{attr} #{value.inspect[0, 20]} with a message naming the rule" do
      expect { described_class.new(valid.merge(attr => value)) }.to raise_error(Puppet::ResourceError, message)
    end
  end

  it 'never shows a refused token in its message' do
    expect { described_class.new(valid.merge(agent_token: SERVER_TOKEN)) }.to raise_error(Puppet::ResourceError) { |e| expect(e.message).not_to include('c' * 32) }
  end

  it 'refuses a token that names another CA than ca_hash' do
    other = "K10#{'d' * 64}::node:#{'b' * 32}"
    expect { described_class.new(valid.merge(agent_token: other)) }.to raise_error(Puppet::ResourceError, %r{agent_token names CA hash dddddddddddd…, not ca_hash aaaaaaaaaaaa…})
  end

  it 'requires a server URL for a server, and the CA hash with a token' do
    expect { described_class.new(name: 'x', cluster_name: 'demo', role: 'server') }.to raise_error(Puppet::ResourceError, %r{server_url is required for a server})
    expect { described_class.new(valid.reject { |k, _| k == :ca_hash }) }.to raise_error(Puppet::ResourceError, %r{ca_hash is required with a token})
    expect { described_class.new(name: 'x', role: 'agent') }.to raise_error(Puppet::ResourceError, %r{cluster_name is required})
  end

  it 'takes the records every node of a sharing cluster exports: an agent\'s, a server\'s claim, a verified server\'s' do
    expect { described_class.new(name: 'demo-a1', cluster_name: 'demo', role: 'agent', node_name: 'a1', status: 'waiting') }.not_to raise_error
    expect { described_class.new(name: 'demo-s1', cluster_name: 'demo', role: 'server', server_url: 'https://10.0.1.10:6443', status: 'candidate') }.not_to raise_error
    sealed = SpecPki.seal(SERVER_TOKEN, SpecPki::COMPILER)
    expect { described_class.new(valid.merge(status: 'verified', sealed_server_token: sealed, verified_at: '2025-01-01T00:00:00Z')) }.not_to raise_error
  end

  it 'leaves a token the agent resolves later (Deferred, preprocess_deferred => false) to be checked then' do
    deferred = Puppet::Pops::Evaluator::DeferredValue.new(proc { AGENT_TOKEN })
    expect { described_class.new(valid.merge(agent_token: deferred)) }.not_to raise_error
  end
end
