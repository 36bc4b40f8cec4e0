# frozen_string_literal: true

require 'json'
require 'openssl'
require 'rspec-puppet'
require 'puppet/util/puppetdb' # the terminus's puppetdb_query, stubbed per example
require 'tmpdir'

fixtures = File.expand_path('fixtures', __dir__)

# A Puppet CA with two certificates, as on a puppetserver: the node under test (node1.example.test) and the
# compiling puppetserver (puppet.example.test). Sealed values in compiled catalogs are opened with their keys.
module SpecPki
  DIR = Dir.mktmpdir('k3s-cluster-spec-pki')

  def self.key(name)
    @keys ||= {}
    @keys[name] ||= OpenSSL::PKey::RSA.new(2048)
  end

  def self.cert(cn, issuer_key: key('ca'), issuer: nil, ca: false)
    c = OpenSSL::X509::Certificate.new
    c.version = 2
    c.serial = (@serial = (@serial || 1) + 1)
    c.subject = OpenSSL::X509::Name.parse("/CN=#{cn}")
    c.issuer = issuer ? issuer.subject : c.subject
    c.public_key = key(cn).public_key
    c.not_before = Time.now - 60
    c.not_after = Time.now + 3600
    ef = OpenSSL::X509::ExtensionFactory.new(nil, c)
    ef.issuer_certificate = issuer || c
    c.add_extension(ef.create_extension('basicConstraints', ca ? 'CA:TRUE' : 'CA:FALSE', true))
    c.sign(issuer_key, OpenSSL::Digest.new('SHA256'))
    c
  end

  CA = cert('Puppet CA: spec', issuer_key: key('Puppet CA: spec'), ca: true)
  def self.signed(cn)
    cert(cn, issuer_key: key('Puppet CA: spec'), issuer: CA)
  end
  NODE = signed('node1.example.test')
  COMPILER = signed('puppet.example.test')
  OTHER_NODE = signed('node2.example.test')
  FOREIGN = cert('node1.example.test', issuer_key: key('foreign'))

  def self.path(name, content)
    file = File.join(DIR, name)
    File.write(file, content)
    file
  end

  CA_FILE = path('ca.pem', CA.to_pem)
  COMPILER_CERT = path('compiler.pem', COMPILER.to_pem)
  COMPILER_KEY = path('compiler.key', key('puppet.example.test').to_pem)
  CERTS = { 'node1.example.test' => NODE, 'puppet.example.test' => COMPILER, 'node2.example.test' => OTHER_NODE }.freeze
  FILES = CERTS.to_h { |cn, cert| [cn, [path("#{cn}.pem", cert.to_pem), path("#{cn}.key", key(cn).to_pem)]] }

  def self.open(sealed, cn)
    OpenSSL::PKCS7.new(sealed).decrypt(key(cn), CERTS[cn])
  end

  def self.seal(plaintext, cert)
    OpenSSL::PKCS7.encrypt([cert], plaintext, OpenSSL::Cipher.new('aes-256-cbc'), OpenSSL::PKCS7::BINARY).to_pem
  end
end

RSpec.configure do |c|
  c.module_path = File.join(fixtures, 'modules')
  c.manifest_dir = File.join(fixtures, 'manifests')
  c.mock_with :rspec
  c.default_facts = {
    'kernel' => 'Linux',
    'os' => { 'family' => 'Debian', 'name' => 'Debian', 'release' => { 'major' => '12' } },
    'networking' => { 'hostname' => 'node1', 'fqdn' => 'node1.example.test', 'ip' => '10.0.1.10' },
    'k3s_cluster_certificate' => SpecPki::NODE.to_pem,
  }
  c.trusted_node_data = true
  c.before(:each) do
    # Catalogs depend on what PuppetDB answers (stubbed per example), which rspec-puppet's catalog cache
    # does not key on: compile afresh for every example.
    RSpec::Puppet::Support.class_variable_set(:@@cache, RSpec::Puppet::Cache.new)
    # The compiling puppetserver's own certificate, key and CA bundle.
    Puppet[:localcacert] = SpecPki::CA_FILE
    Puppet[:hostcert] = SpecPki::COMPILER_CERT
    Puppet[:hostprivkey] = SpecPki::COMPILER_KEY
    # rspec-puppet resolves Deferred values as the agent does, after compiling. Keep the catalog as the node
    # caches it (Deferred values unresolved) on the catalog object, and resolve them with the node's own
    # certificate and key, as on the node.
    allow(Puppet::Pops::Evaluator::DeferredResolver).to receive(:resolve_and_replace).and_wrap_original do |original, facts, catalog, *rest|
      cached = Puppet.override(rich_data: true) { catalog.to_data_hash.to_json }
      catalog.instance_variable_set(:@k3s_spec_cached, cached)
      saved = [Puppet[:hostcert], Puppet[:hostprivkey]]
      Puppet[:hostcert], Puppet[:hostprivkey] = SpecPki::FILES.fetch(catalog.name, saved)
      begin
        original.call(facts, catalog, *rest)
      ensure
        Puppet[:hostcert], Puppet[:hostprivkey] = saved
      end
    end
  end
  c.after(:suite) { FileUtils.rm_rf(SpecPki::DIR) }
end

HASH = 'a' * 64
AGENT_TOKEN = "K10#{HASH}::node:#{'b' * 32}"
SERVER_TOKEN = "K10#{HASH}::server:#{'c' * 32}"
K3S_VERSIONS = JSON.parse(File.read(File.expand_path('../../../../tests/fixtures/k3s-versions.json', __dir__)))

# What PuppetDB answers to the puppetserver's compile-time query for a cluster's exports.
def puppetdb_answers(rows)
  allow(Puppet::Util::Puppetdb).to receive(:query_puppetdb).and_return(rows)
end

def export_row(certname, params)
  { 'certname' => certname, 'title' => "#{params['cluster_name'] || 'my-cluster'}-#{certname}", 'type' => 'K3s_cluster_info', 'exported' => true,
    'parameters' => { 'cluster_name' => 'my-cluster', 'role' => 'server' }.merge(params) }
end

def verified_row(certname, url: 'https://10.0.1.20:6443', sealed_server_token: SpecPki.seal(SERVER_TOKEN, SpecPki::COMPILER))
  export_row(certname, 'server_url' => url, 'status' => 'verified', 'ca_hash' => HASH, 'agent_token' => AGENT_TOKEN,
                       'sealed_server_token' => sealed_server_token, 'node_name' => certname.split('.').first)
end
