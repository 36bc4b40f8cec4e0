# frozen_string_literal: true

require 'spec_helper'

describe PuppetX::K3sCluster::Sealing do
  let(:node) { SpecPki::NODE }

  it 'seals to one certificate: its key opens it, another key cannot' do
    sealed = described_class.seal(AGENT_TOKEN, node)
    expect(described_class.sealed?(sealed)).to be(true)
    expect(sealed.encoding).to eq(Encoding::UTF_8)
    expect(sealed).not_to include('b' * 32)
    expect(described_class.open(sealed, SpecPki.key('node1.example.test'), node)).to eq(AGENT_TOKEN)
    expect(described_class.open(sealed, SpecPki.key('node2.example.test'), SpecPki::OTHER_NODE)).to be_nil
  end

  it 'refuses what is not a sealed value' do
    expect { described_class.open(AGENT_TOKEN, SpecPki.key('node1.example.test'), node) }.to raise_error(described_class::Error, %r{not a sealed value})
  end

  describe '.node_certificate (the node\'s fact, checked before anything is sealed to it)' do
    it 'accepts the CA-signed certificate of the node being compiled' do
      expect(described_class.node_certificate(node.to_pem, 'node1.example.test', SpecPki::CA_FILE).subject.to_s).to eq('/CN=node1.example.test')
    end

    it 'refuses another node\'s certificate' do
      expect { described_class.node_certificate(SpecPki::OTHER_NODE.to_pem, 'node1.example.test', SpecPki::CA_FILE) }
        .to raise_error(described_class::Error, %r{is for "node2.example.test", not for this node "node1.example.test"})
    end

    it 'refuses a certificate another CA signed' do
      expect { described_class.node_certificate(SpecPki::FOREIGN.to_pem, 'node1.example.test', SpecPki::CA_FILE) }
        .to raise_error(described_class::Error, %r{not signed by this Puppet CA})
    end

    it 'says when the fact is missing' do
      expect { described_class.node_certificate(nil, 'node1.example.test', SpecPki::CA_FILE) }.to raise_error(described_class::Error, %r{k3s_cluster_certificate .* is missing})
    end
  end
end
