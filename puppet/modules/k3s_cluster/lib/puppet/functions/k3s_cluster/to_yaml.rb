# frozen_string_literal: true

require 'yaml'

# @summary Renders k3s configuration as YAML (Puppet has no core YAML serializer).
Puppet::Functions.create_function(:'k3s_cluster::to_yaml') do
  # @param data The configuration; keys are k3s flag names.
  # @return [String] YAML document
  dispatch :to_yaml do
    param 'Hash', :data
  end

  def to_yaml(data)
    data.to_yaml
  end
end
