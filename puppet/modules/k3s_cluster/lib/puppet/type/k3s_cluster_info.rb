# frozen_string_literal: true

require_relative '../../puppet_x/k3s_cluster/sealing'

Puppet::Type.newtype(:k3s_cluster_info) do
  @doc = <<-DOC
    @summary What a k3s node shares with its cluster, and what a joining node keeps of it.

    Every node of an automatically sharing cluster exports one (`@@k3s_cluster_info`, title
    `<cluster_name>-<certname>`): a server its URL and `status`, and once it passed the seven-step check
    its CA hash, its agent-scoped token and its server token sealed to the puppetserver; an agent its node
    name and role. The puppetserver reads these exports when it compiles a joining node's catalog and
    declares, in that catalog, one `k3s_cluster_info` per verified server, its tokens `Deferred` and sealed
    to the node (see `k3s_cluster::unseal`); the `ruby` provider keeps each as a root-only (0600) YAML file in
    `info_dir`, which the module's join script reads. A `<<| |>>` collector in your own manifests works too
    (plain agent tokens then sit in the catalog the node caches). Tokens are sensitive properties: logs and
    reports show them redacted, and so does `puppet resource k3s_cluster_info`.

    @example
      k3s_cluster_info { 'demo-server-0':
        cluster_name => 'demo',
        server_url   => 'https://10.0.1.10:6443',
        role         => 'server',
        ca_hash      => '<64 hex>',
        agent_token  => Deferred('k3s_cluster::unseal', [$sealed]),
      }
  DOC

  def self.deferred?(value)
    value.class.name.to_s.include?('Deferred')
  end

  ensurable do
    defaultvalues
    defaultto :present
  end

  newparam(:name, namevar: true) do
    desc 'Unique title, conventionally `<cluster_name>-<certname of the node that exported it>`.'
    validate do |value|
      unless value.is_a?(String) && value.match?(%r{\A[a-z0-9][a-z0-9._-]{0,252}\z})
        raise ArgumentError, "k3s_cluster_info name #{value.inspect} must be lower-case letters, digits, '.', '_' or '-'"
      end
    end
  end

  newproperty(:cluster_name) do
    desc 'DNS label naming the cluster.'
    validate do |value|
      unless value.is_a?(String) && value.match?(%r{\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\z})
        raise ArgumentError, "k3s_cluster_info cluster_name #{value.inspect} must be a DNS label (a-z, 0-9, '-', at most 63 characters)"
      end
    end
  end

  newproperty(:server_url) do
    desc 'https URL of the server (the registration address agents use); servers only.'
    validate do |value|
      unless value.is_a?(String) && value.match?(%r{\Ahttps://[^\s/:]+(:\d{1,5})?/?\z})
        raise ArgumentError, "k3s_cluster_info server_url #{value.inspect} must be an https URL such as https://10.0.1.10:6443"
      end
    end
  end

  newproperty(:role) do
    desc 'Role of the node the record describes.'
    newvalues(:server, :agent)
  end

  newproperty(:ca_hash) do
    desc 'sha256 of the cluster CA as served at /cacerts: joining nodes pin the server with it.'
    validate do |value|
      raise ArgumentError, "k3s_cluster_info ca_hash #{value.inspect} must be 64 lower-case hex digits" unless value.to_s.match?(%r{\A[0-9a-f]{64}\z})
    end
  end

  # The two tokens differ only in the k3s user they authenticate as.
  {
    agent_token: ['node', 'Agent-scoped join token, `K10<ca hash>::node:<password>`.'],
    server_token: ['server', 'Server token `K10<ca hash>::server:<password>`, for servers joining the cluster; never exported in clear.'],
  }.each do |name, (user, description)|
    newproperty(name) do
      sensitive true
      desc description
      validate do |value|
        next if resource.class.deferred?(value)
        m = PuppetX::K3sCluster::TOKEN.match(value.to_s)
        raise ArgumentError, "k3s_cluster_info #{name} must be a full k3s token K10<64 hex>::#{user}:<password> (value hidden)" unless m && m[2] == user
      end
    end
  end

  newparam(:status) do
    desc 'Where the node stands (exports only): a server is `candidate`, `initialising`, `joining`, `waiting` or `verified` ' \
         '(passed the seven-step check; only then does the record carry tokens); an agent `waiting` or `joining`.'
    newvalues(:candidate, :initialising, :joining, :waiting, :verified)
  end

  newparam(:node_name) do
    desc 'Kubernetes node name of the node the record describes (the cluster check expects it, with its role).'
  end

  newparam(:verified_at) do
    desc 'When the server last passed the seven-step check (ISO 8601, UTC), for verified records.'
  end

  newparam(:sealed_server_token) do
    desc 'The server token sealed (PKCS#7) to the puppetserver, which re-seals it for each joining server it compiles a catalog for.'
    validate do |value|
      raise ArgumentError, 'k3s_cluster_info sealed_server_token must be a PKCS7 PEM block' unless PuppetX::K3sCluster::Sealing.sealed?(value)
    end
  end

  newparam(:token_timeout) do
    desc 'Seconds (30–600) a joining node waits for this cluster to export.'
    defaultto 300
    munge { |value| Integer(value) }
    validate do |value|
      v = Integer(value, exception: false)
      raise ArgumentError, "k3s_cluster_info token_timeout #{value.inspect} must be an integer between 30 and 600" unless v&.between?(30, 600)
    end
  end

  newparam(:info_dir) do
    desc 'Root-only directory the provider keeps records in.'
    defaultto '/etc/rancher/k3s/cluster-info' # the provider's default_dir
    validate do |value|
      raise ArgumentError, "k3s_cluster_info info_dir #{value.inspect} must be an absolute path" unless value.to_s.start_with?('/')
    end
  end

  validate do
    next if self[:ensure] == :absent
    # A resource named by its title only, as `puppet resource k3s_cluster_info` and purging build them.
    next if [:cluster_name, :server_url, :role, :ca_hash, :agent_token, :server_token].all? { |p| self[p].nil? }
    raise Puppet::Error, "k3s_cluster_info[#{self[:name]}]: cluster_name is required" if self[:cluster_name].nil?
    tokens = [:agent_token, :server_token].reject { |p| self[p].nil? }
    raise Puppet::Error, "k3s_cluster_info[#{self[:name]}]: server_url is required for a server" if self[:role].to_s == 'server' && self[:server_url].nil?
    next if tokens.empty?
    raise Puppet::Error, "k3s_cluster_info[#{self[:name]}]: ca_hash is required with a token" if self[:ca_hash].nil?
    tokens.each do |p|
      next if self.class.deferred?(self[p])
      hash = PuppetX::K3sCluster::TOKEN.match(self[p].to_s)[1]
      raise Puppet::Error, "k3s_cluster_info[#{self[:name]}]: #{p} names CA hash #{hash[0, 12]}…, not ca_hash #{self[:ca_hash][0, 12]}…" unless hash == self[:ca_hash]
    end
  end
end
