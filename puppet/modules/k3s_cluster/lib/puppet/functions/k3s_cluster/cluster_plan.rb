# frozen_string_literal: true

require 'time'
require_relative '../../../puppet_x/k3s_cluster/sealing'

# @summary What a node of an automatically sharing cluster does in this catalog, decided on the puppetserver
#   at compile time from the cluster's exported `k3s_cluster_info` records in PuppetDB.
#
# Runs on the puppetserver only (the node never talks to PuppetDB). Tokens it hands to the catalog are sealed
# to the node's own Puppet certificate: the catalog holds ciphertext that `k3s_cluster::unseal` opens on the
# node (Deferred), so neither the catalog the node caches nor the one PuppetDB stores holds a token.
#
# Actions:
# - `init`      start the cluster (`cluster_init => true`, or the automatic rule below);
# - `join`      join through the verified servers in `records` (agents, and servers joining a running cluster);
# - `joined`    a server that joined before and has no usable record now: keeps running as it is;
# - `candidate` a server with neither cluster_init nor server_url on its first run: it registers (its export,
#               status `candidate`) and starts nothing; on a later run the lowest certname among the
#               candidates initialises and the others join it (or the first of `servers`, when given);
# - `wait`      nothing to join yet: `message` says what it waits for; `expired` once token_timeout has passed
#               since `waiting_since` (or at once without wait_for_token).
Puppet::Functions.create_function(:'k3s_cluster::cluster_plan') do
  # @param args
  #   `cluster_name`, `certname`, `node_type`, `cluster_init` (true/false/undef), `servers` (certnames),
  #   `wait_for_token`, `token_timeout`, `node_name`, `now` (epoch seconds).
  # @return [Hash] `action`, `status` (this node's export), `records`, `export`, `not_exported`, `message`,
  #   `waiting_since`, `expired`, `expected_nodes`.
  dispatch :plan do
    param 'Hash[String, Any]', :args
    return_type 'Hash[String, Any]'
  end

  def plan(args)
    @args = args
    @facts = closure_scope['facts'] || {}
    @cluster = args['cluster_name']
    @me = args['certname']
    @servers = args['servers'] || []
    rows = query
    own = rows.find { |r| r['certname'] == @me }
    @others = rows.reject { |r| r['certname'] == @me }
    @others = @others.select { |r| r['role'] == 'agent' || @servers.include?(r['certname']) } unless @servers.empty?

    result = args['node_type'] == 'server' ? server_plan(own) : agent_plan
    result['expected_nodes'] = expected_nodes(rows)
    result
  end

  private

  def sealing
    PuppetX::K3sCluster::Sealing
  end

  def token_match(text)
    PuppetX::K3sCluster::TOKEN.match(text.to_s)
  end

  def fields
    ['cluster_name', 'server_url', 'role', 'status', 'ca_hash', 'agent_token', 'sealed_server_token', 'node_name', 'verified_at']
  end

  def query
    ast = ['from', 'resources',
           ['and', ['=', 'type', 'K3s_cluster_info'], ['=', 'exported', true], ['=', ['parameter', 'cluster_name'], @cluster]]]
    answer = begin
      call_function('puppetdb_query', ast)
    rescue Puppet::ParseError, Puppet::Error => e
      raise Puppet::ParseError, "k3s_cluster: cannot read cluster '#{@cluster}' from PuppetDB at compile time " \
        "(auto_token_sharing needs the puppetserver's PuppetDB terminus and storeconfigs): #{e.message}"
    end
    answer.map { |r|
      params = r['parameters'] || {}
      { 'certname' => r['certname'], 'title' => r['title'] }.merge(params.select { |k, _| fields.include?(k) })
    }.sort_by { |r| r['title'].to_s }
  end

  # Servers whose export says they passed the seven-step check, with a well-formed agent token of their CA.
  def verified_servers
    @others.select do |r|
      m = token_match(r['agent_token'])
      r['role'] == 'server' && r['status'] == 'verified' && r['server_url'].to_s.start_with?('https://') &&
        m && m[2] == 'node' && m[1] == r['ca_hash']
    end
  end

  def agent_plan
    records = verified_servers.map { |r| node_record(r, false) }
    return { 'action' => 'join', 'status' => 'joining', 'records' => records } unless records.empty?
    # Joined before: k3s-agent keeps running as it is (it knows every server of the cluster by now).
    state = @facts['k3s_cluster_node']
    return { 'action' => 'joined', 'status' => 'joining', 'records' => [] } if state.is_a?(Hash) && state['joined'] == true
    waiting("no server of cluster '#{@cluster}' has exported verified join information yet",
            'k3s-agent is not started', 'a later Puppet run joins once a server of the cluster has exported')
  end

  def server_plan(own)
    state = @facts['k3s_cluster_node']
    state = {} unless state.is_a?(Hash)
    same_cluster = state['cluster_name'] == @cluster
    export, not_exported = own_export
    base = { 'export' => export, 'not_exported' => not_exported }

    if !@servers.empty? && !@servers.include?(@me)
      raise Puppet::ParseError, "k3s_cluster: this node (certname #{@me}) is not in servers #{@servers.inspect} of cluster '#{@cluster}'; " \
        'only the servers listed there may start or join it'
    end

    role = same_cluster ? state['role'] : nil
    role = state['joined'] ? 'join' : 'init' if !%w[init join].include?(role) && state['has_data'] && same_cluster
    status_for = ->(pending) { export ? 'verified' : pending }

    case role
    when 'init'
      return base.merge('action' => 'init', 'status' => status_for.call('initialising'), 'records' => [])
    when 'join'
      records = joinable_records
      return base.merge('action' => records.empty? ? 'joined' : 'join', 'status' => status_for.call('joining'), 'records' => records)
    end

    started = @others.select { |r| r['role'] == 'server' && %w[initialising joining verified].include?(r['status']) }
    case @args['cluster_init']
    when true
      first = started.find { |r| %w[initialising verified].include?(r['status']) }
      if first && !state['has_data']
        raise Puppet::ParseError, "k3s_cluster: cluster_init is true, but #{first['certname']} already started cluster '#{@cluster}' " \
          '(its export is in PuppetDB); a second cluster_init would start a second cluster: remove cluster_init from this node to let it join'
      end
      return base.merge('action' => 'init', 'status' => status_for.call('initialising'), 'records' => [])
    when false
      return join_or_wait(base, 'waiting', 'a server of the cluster to export verified join information (cluster_init is false: this server only joins)')
    end

    # Neither cluster_init nor server_url: the automatic rule.
    return join_or_wait(base, 'waiting', 'a server of the cluster to export verified join information') unless verified_servers.empty?
    unless started.empty?
      return join_or_wait(base, 'waiting', "#{started.map { |r| r['certname'] }.join(', ')} to finish starting the cluster and export verified join information")
    end
    unless @servers.empty?
      return base.merge('action' => 'init', 'status' => status_for.call('initialising'), 'records' => []) if @servers.first == @me
      return join_or_wait(base, 'waiting', "#{@servers.first} (the first of servers) to start the cluster")
    end
    if own.nil?
      return base.merge('action' => 'candidate', 'status' => 'candidate', 'records' => [],
                        'message' => "server #{@me} has neither cluster_init nor server_url and no server of cluster '#{@cluster}' has started it: " \
                                     'registered as a candidate; k3s is not started. The next Puppet run decides: the candidate with the lowest ' \
                                     'certname starts the cluster, the others join it')
    end
    lowest = (@others.select { |r| r['role'] == 'server' && r['status'] == 'candidate' }.map { |r| r['certname'] } + [@me]).min
    return base.merge('action' => 'init', 'status' => status_for.call('initialising'), 'records' => []) if lowest == @me
    join_or_wait(base, 'candidate', "#{lowest} (the lowest certname among the candidate servers) to start the cluster")
  end

  def join_or_wait(base, waiting_status, what)
    records = joinable_records
    return base.merge('action' => 'join', 'status' => base['export'] ? 'verified' : 'joining', 'records' => records) unless records.empty?
    unopened = verified_servers.size
    what += " (#{unopened} verified export(s) carry a server token sealed for another puppetserver than this one)" if unopened.positive?
    base.merge(waiting("waiting for #{what}", 'k3s is not started', 'a later Puppet run joins')).merge('status' => waiting_status)
  end

  # Verified servers whose sealed server token this puppetserver can open.
  def joinable_records
    verified_servers.map { |r| node_record(r, true) }.compact
  end

  def waiting(what, consequence, outlook)
    state = @facts['k3s_cluster_node']
    since = state['waiting_since'] if state.is_a?(Hash) && state['cluster_name'] == @cluster
    now = @args['now']
    since = now unless since.is_a?(Integer) && since <= now
    waited = now - since
    timeout = @args['token_timeout']
    expired = !@args['wait_for_token'] || waited >= timeout
    stamp = Time.at(since).utc.iso8601
    message = if !@args['wait_for_token']
                "k3s_cluster: #{what}; #{consequence} (wait_for_token is false)"
              elsif expired
                "k3s_cluster: #{what}; waited #{waited} s since #{stamp}, more than token_timeout (#{timeout} s); #{consequence}"
              else
                "k3s_cluster: #{what}; #{consequence}; waiting since #{stamp} (#{waited} s of token_timeout #{timeout} s): #{outlook}"
              end
    { 'action' => 'wait', 'status' => 'waiting', 'records' => [], 'message' => message, 'waiting_since' => since, 'expired' => expired }
  end

  # A verified server's record for this node's catalog: tokens sealed to this node's certificate.
  def node_record(row, with_server_token)
    rec = { 'title' => row['title'], 'certname' => row['certname'], 'server_url' => row['server_url'], 'ca_hash' => row['ca_hash'],
            'agent_token' => seal_for_node(row['agent_token']) }
    if with_server_token
      server_token = open_sealed(row['sealed_server_token'])
      m = token_match(server_token)
      return nil unless m && m[2] == 'server' && m[1] == row['ca_hash']
      rec['server_token'] = seal_for_node(server_token)
    end
    rec
  end

  # This server's own export, from its k3s_cluster_export fact (tokens sealed to this puppetserver there).
  def own_export
    fact = @facts['k3s_cluster_export']
    return [nil, 'k3s has not been checked on this server yet'] unless fact.is_a?(Hash)
    return [nil, "the seven-step check failed: #{fact['failed_step'] || 'no step named'}"] unless fact['verified'] == true
    sealed_agent = fact['sealed_agent_token']
    return [nil, 'the check passed, but this server has not sealed its tokens yet (it does once it has this puppetserver\'s certificate)'] unless sealed_agent
    agent_token = open_sealed(sealed_agent)
    if agent_token.nil?
      return [nil, "its tokens are sealed for another puppetserver (#{fact['sealed_for']}); they are sealed again for this one on the next run"]
    end
    m = token_match(agent_token)
    return [nil, 'its agent token is not a full K10<CA hash>::node:<password> token'] unless m && m[2] == 'node' && m[1] == fact['ca_hash']
    [{ 'ca_hash' => fact['ca_hash'], 'agent_token' => agent_token, 'sealed_server_token' => fact['sealed_server_token'],
       'verified_at' => fact['checked_at'] }, nil]
  end

  def expected_nodes(rows)
    nodes = rows.map { |r| { 'name' => r['node_name'], 'role' => r['role'], 'certname' => r['certname'] } }
                .reject { |n| n['name'].nil? || !%w[server agent].include?(n['role']) }
    nodes.reject! { |n| n['certname'] == @me }
    nodes << { 'name' => @args['node_name'], 'role' => @args['node_type'], 'certname' => @me }
    nodes.sort_by { |n| n['name'] }
  end

  def seal_for_node(plaintext)
    @node_cert ||= begin
      sealing.node_certificate(@facts['k3s_cluster_certificate'], @me, Puppet[:localcacert])
    rescue PuppetX::K3sCluster::Sealing::Error => e
      raise Puppet::ParseError, "k3s_cluster: cannot seal this node's tokens: #{e.message}"
    end
    sealing.seal(plaintext, @node_cert)
  end

  def open_sealed(sealed)
    return nil unless sealing.sealed?(sealed)
    @compiler_key ||= sealing.read_key(Puppet[:hostprivkey])
    @compiler_cert ||= sealing.read_certificate(Puppet[:hostcert])
    sealing.open(sealed, @compiler_key, @compiler_cert)
  rescue PuppetX::K3sCluster::Sealing::Error => e
    Puppet.warning("k3s_cluster: ignoring a sealed token of cluster '#{@cluster}': #{e.message}")
    nil
  end
end
