# frozen_string_literal: true

require 'spec_helper'

describe 'k3s_cluster::compiler_certificate' do
  it { is_expected.to run.with_params.and_return(SpecPki::COMPILER.to_pem) }

  it 'names the file it cannot read' do
    Puppet[:hostcert] = '/nonexistent/cert.pem'
    is_expected.to run.with_params.and_raise_error(Puppet::ParseError, %r{cannot read this puppetserver's certificate /nonexistent/cert.pem})
  end
end
