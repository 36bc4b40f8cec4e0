# @summary Refuses parameter combinations that cannot work, before anything is changed.
#   Each message names the parameter, the value given and the rule.
# @api private
define k3s_cluster::validate (
  String            $node_type,
  Optional[Boolean] $cluster_init,
  Boolean           $auto_token_sharing,
  Boolean           $token_given,
  Optional[String]  $token_file,
  Optional[String]  $server_url,
  String            $install_method,
  Optional[String]  $binary_source,
  Optional[String]  $binary_sha256,
  Array[String]     $servers,
  String            $collect_from,
  Optional[String]  $puppetdb_url,
) {
  if $token_given and $token_file {
    fail("k3s_cluster: token and token_file (${token_file}) are both set; give the token one way only")
  }
  if $node_type == 'agent' and $cluster_init == true {
    fail('k3s_cluster: cluster_init is true but node_type is agent; only a server can start a cluster')
  }
  if $cluster_init == true and $server_url {
    fail(join([
      "k3s_cluster: cluster_init is true and server_url is ${server_url};",
      'the first server starts the cluster and joins nobody',
    ], ' '))
  }
  if $auto_token_sharing {
    if $token_given or $token_file {
      fail(join([
        'k3s_cluster: auto_token_sharing is true but a token or token_file is given;',
        'the token comes from PuppetDB in this mode (set auto_token_sharing => false for manual mode)',
      ], ' '))
    }
  } elsif $node_type == 'agent' {
    unless $server_url {
      fail(join([
        'k3s_cluster: server_url is not set;',
        'an agent in manual mode (auto_token_sharing => false) needs the https URL of a server',
      ], ' '))
    }
    unless $token_given or $token_file {
      fail(join([
        'k3s_cluster: neither token nor token_file is set;',
        'an agent in manual mode (auto_token_sharing => false) needs the join token',
      ], ' '))
    }
  } elsif $server_url and !($token_given or $token_file) {
    fail(join([
      "k3s_cluster: server_url is ${server_url} but neither token nor token_file is set;",
      'a joining server needs the server token',
    ], ' '))
  }
  if !$servers.empty and !$auto_token_sharing {
    fail("k3s_cluster: servers is ${servers} but auto_token_sharing is false; the servers list only applies to automatic sharing")
  }
  if $collect_from == 'puppetdb' {
    unless $auto_token_sharing and $node_type == 'agent' {
      fail(join([
        "k3s_cluster: collect_from is 'puppetdb' but this is ${node_type} with auto_token_sharing ${auto_token_sharing};",
        'only agents of an automatically sharing cluster can query PuppetDB themselves',
        '(joining servers get the sealed server token through the puppetserver)',
      ], ' '))
    }
  } elsif $puppetdb_url {
    fail(join([
          "k3s_cluster: puppetdb_url is ${puppetdb_url} but collect_from is '${collect_from}';",
          "puppetdb_url only applies with collect_from => 'puppetdb'",
    ], ' '))
  }
  if $install_method == 'binary' {
    unless $binary_source {
      fail(join([
        "k3s_cluster: install_method is 'binary' but binary_source is not set;",
        'give the URL or absolute path of the k3s binary',
      ], ' '))
    }
    if $binary_source =~ /\Ahttp:\/\// and !$binary_sha256 {
      fail(join([
        "k3s_cluster: binary_source is ${binary_source}, a plain http URL, but binary_sha256 is not set;",
        'an unencrypted download must be checked against its sha256',
      ], ' '))
    }
  } elsif $binary_source {
    fail(join([
      "k3s_cluster: binary_source is ${binary_source} but install_method is '${install_method}';",
      "binary_source needs install_method => 'binary'",
    ], ' '))
  }
}
