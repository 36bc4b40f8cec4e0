# frozen_string_literal: true

require 'rspec-puppet'

fixtures = File.expand_path('fixtures', __dir__)

RSpec.configure do |c|
  c.module_path = File.join(fixtures, 'modules')
  c.manifest_dir = File.join(fixtures, 'manifests')
  c.mock_with :rspec
  c.default_facts = {
    'kernel' => 'Linux',
    'os' => { 'family' => 'Debian', 'name' => 'Debian', 'release' => { 'major' => '12' } },
    'networking' => { 'hostname' => 'node1', 'fqdn' => 'node1.example.test', 'ip' => '10.0.1.10' },
  }
  c.trusted_node_data = true
end

AGENT_TOKEN = "K10#{'a' * 64}::node:#{'b' * 32}"
SERVER_TOKEN = "K10#{'a' * 64}::server:#{'c' * 32}"
