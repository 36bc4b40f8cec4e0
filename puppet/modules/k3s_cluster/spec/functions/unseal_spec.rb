# frozen_string_literal: true

require 'spec_helper'

describe 'k3s_cluster::unseal' do
  before(:each) { Puppet[:hostcert], Puppet[:hostprivkey] = SpecPki::FILES.fetch('node1.example.test') }

  it 'opens, with this node\'s Puppet key, what was sealed to its certificate, as a Sensitive value' do
    result = subject.execute(SpecPki.seal(AGENT_TOKEN, SpecPki::NODE))
    expect(result).to be_a(Puppet::Pops::Types::PSensitiveType::Sensitive)
    expect(result.unwrap).to eq(AGENT_TOKEN)
  end

  it { is_expected.to run.with_params(SpecPki.seal(AGENT_TOKEN, SpecPki::OTHER_NODE)).and_raise_error(Puppet::Error, %r{sealed for another certificate than this node's}) }
  it { is_expected.to run.with_params('not sealed').and_raise_error(Puppet::Error, %r{cannot open a sealed token with this node's Puppet key: not a sealed value}) }
end
