# frozen_string_literal: true

Puppet::Type.newtype(:k3s_cluster_info) do
  @doc = <<-DOC
    @summary What a k3s server shares with the nodes joining its cluster.

    Servers export one per node (`@@k3s_cluster_info`). The module's agents read those exports from
    PuppetDB with k3s-collect-cluster-info.sh instead of collecting them, because Puppet caches an
    applied catalog at 0660 and a collected token would sit in it; where an estate collects them itself,
    the provider writes each to a root-only file under `info_dir`, the format the script reads. Tokens
    are sensitive properties: logs and reports show them redacted.

    @example
      @@k3s_cluster_info { 'demo-server-0':
        cluster_name => 'demo',
        server_url   => 'https://10.0.1.10:6443',
        role         => 'server',
        ca_hash      => '<64 hex>',
        agent_token  => 'K10<64 hex>::node:<password>',
      }
  DOC

  TOKEN = %r{\AK10([0-9a-f]{64})::(server|node):[A-Za-z0-9]{1,128}\z}.freeze

  ensurable do
    defaultvalues
    defaultto :present
  end

  newparam(:name, namevar: true) do
    desc 'Unique title, conventionally `<cluster_name>-<server certname>`.'
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
    desc 'https URL of the server (the registration address agents use).'
    validate do |value|
      unless value.is_a?(String) && value.match?(%r{\Ahttps://[^\s/:]+(:\d{1,5})?/?\z})
        raise ArgumentError, "k3s_cluster_info server_url #{value.inspect} must be an https URL such as https://10.0.1.10:6443"
      end
    end
  end

  newproperty(:role) do
    desc 'Role of the node that exported the record.'
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
    server_token: ['server', 'Server token `K10<ca hash>::server:<password>`, exported only when the server shares it.'],
  }.each do |name, (user, description)|
    newproperty(name) do
      sensitive true
      desc description
      validate do |value|
        m = TOKEN.match(value.to_s)
        raise ArgumentError, "k3s_cluster_info #{name} must be a full k3s token K10<64 hex>::#{user}:<password> (value hidden)" unless m && m[2] == user
      end
    end
  end

  newparam(:token_timeout) do
    desc 'Seconds (30–600) a collecting node waits for this cluster to export.'
    defaultto 300
    munge { |value| Integer(value) }
    validate do |value|
      v = Integer(value, exception: false)
      raise ArgumentError, "k3s_cluster_info token_timeout #{value.inspect} must be an integer between 30 and 600" unless v && v.between?(30, 600)
    end
  end

  newparam(:info_dir) do
    desc 'Root-only directory the provider writes collected records to.'
    defaultto '/etc/rancher/k3s/cluster-info'
    validate do |value|
      raise ArgumentError, "k3s_cluster_info info_dir #{value.inspect} must be an absolute path" unless value.to_s.start_with?('/')
    end
  end

  validate do
    next if self[:ensure] == :absent
    [:cluster_name, :server_url, :ca_hash].each do |p|
      raise Puppet::Error, "k3s_cluster_info[#{self[:name]}]: #{p} is required" if self[p].nil?
    end
    [:agent_token, :server_token].each do |p|
      next if self[p].nil?
      hash = TOKEN.match(self[p].to_s)[1]
      raise Puppet::Error, "k3s_cluster_info[#{self[:name]}]: #{p} names CA hash #{hash[0, 12]}…, not ca_hash #{self[:ca_hash][0, 12]}…" unless hash == self[:ca_hash]
    end
  end
end
