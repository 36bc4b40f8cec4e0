# frozen_string_literal: true

require 'spec_helper'

# The table shared with the Pulumi program's k3s-cluster:k3sVersion rule (tests/fixtures/k3s-versions.json).
describe 'K3s_cluster::Version' do
  K3S_VERSIONS['accepted'].each { |v| it { is_expected.to allow_value(v) } }
  K3S_VERSIONS['refused'].each { |v| it { is_expected.not_to allow_value(v) } }
end
