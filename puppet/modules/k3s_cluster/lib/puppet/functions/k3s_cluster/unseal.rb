# frozen_string_literal: true

require_relative '../../../puppet_x/k3s_cluster/sealing'

# @summary Opens, on the node, a value the puppetserver sealed to this node's Puppet certificate
#   (`k3s_cluster::seal`, `k3s_cluster::cluster_plan`). Meant to be called as
#   `Deferred('k3s_cluster::unseal', [$sealed])`: the agent resolves it after caching the catalog, so the
#   cached catalog holds only the ciphertext, and the resolved value stays Sensitive (redacted in logs and
#   reports).
Puppet::Functions.create_function(:'k3s_cluster::unseal') do
  # @param sealed PKCS#7 PEM sealed to this node's certificate.
  # @return [Sensitive[String]] the secret.
  dispatch :unseal do
    param 'String', :sealed
    return_type 'Sensitive[String]'
  end

  def unseal(sealed)
    sealing = PuppetX::K3sCluster::Sealing
    cert = sealing.read_certificate(Puppet[:hostcert])
    plaintext = sealing.open(sealed, sealing.read_key(Puppet[:hostprivkey]), cert)
    if plaintext.nil?
      raise Puppet::Error, "k3s_cluster: a sealed token in this catalog was sealed for another certificate than this node's (#{Puppet[:hostcert]}); " \
        'was the node\'s certificate replaced after the catalog was compiled? A new Puppet run compiles a new catalog'
    end
    Puppet::Pops::Types::PSensitiveType::Sensitive.new(plaintext)
  rescue PuppetX::K3sCluster::Sealing::Error, Errno::ENOENT, Errno::EACCES => e
    raise Puppet::Error, "k3s_cluster: cannot open a sealed token with this node's Puppet key: #{e.message}"
  end
end
