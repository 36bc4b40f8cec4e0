# frozen_string_literal: true

# @summary The certificate (PEM) of the puppetserver compiling this catalog. A server seals the tokens in
#   its `k3s_cluster_export` fact to it, so the facts PuppetDB and the puppetserver store hold ciphertext
#   that only this puppetserver can open.
Puppet::Functions.create_function(:'k3s_cluster::compiler_certificate') do
  # @return [String] PEM certificate.
  dispatch :compiler_certificate do
    return_type 'String'
  end

  def compiler_certificate
    File.read(Puppet[:hostcert])
  rescue Errno::ENOENT, Errno::EACCES => e
    raise Puppet::ParseError, "k3s_cluster: cannot read this puppetserver's certificate #{Puppet[:hostcert]}: #{e.message}"
  end
end
