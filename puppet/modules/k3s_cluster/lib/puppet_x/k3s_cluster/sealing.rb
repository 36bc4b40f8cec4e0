# frozen_string_literal: true

require 'openssl'

module PuppetX
  module K3sCluster
    # A full k3s token: K10<sha256 of the cluster CA>::<user>:<password>; user node (agent) or server.
    TOKEN = %r{\AK10([0-9a-f]{64})::(node|server):[A-Za-z0-9]{1,128}\z}.freeze

    # Tokens travel sealed: encrypted (CMS/PKCS#7 enveloped data, AES-256-CBC) to one Puppet certificate, so
    # that only the holder of that certificate's private key can read them. The puppetserver seals a node's
    # tokens to the node's certificate when it compiles the node's catalog; a server seals the tokens in its
    # facts to the certificate of the puppetserver that compiled its catalog. PuppetDB, the puppetserver's
    # fact cache and the catalog a node caches on disk therefore hold ciphertext only.
    module Sealing
      class Error < StandardError; end

      CIPHER = 'aes-256-cbc'
      PEM = %r{\A-----BEGIN PKCS7-----\n[A-Za-z0-9+/=\n]+-----END PKCS7-----\n?\z}.freeze

      module_function

      def certificate(pem, what)
        OpenSSL::X509::Certificate.new(pem)
      rescue OpenSSL::X509::CertificateError, TypeError => e
        raise Error, "#{what} is not a PEM certificate (#{e.message})"
      end

      def common_name(cert)
        entry = cert.subject.to_a.find { |name, _, _| name == 'CN' }
        entry && entry[1]
      end

      # The node's certificate as its fact presents it, accepted only when the CA signed it for that certname:
      # a node can present no certificate but its own that it holds the key of.
      def node_certificate(pem, certname, ca_file)
        raise Error, 'the fact k3s_cluster_certificate (the node\'s Puppet certificate) is missing' if pem.nil? || pem.to_s.empty?
        cert = certificate(pem, 'the fact k3s_cluster_certificate')
        store = OpenSSL::X509::Store.new
        store.add_file(ca_file)
        raise Error, "the certificate in the fact k3s_cluster_certificate is not signed by this Puppet CA (#{ca_file})" unless store.verify(cert)
        cn = common_name(cert)
        raise Error, "the certificate in the fact k3s_cluster_certificate is for #{cn.inspect}, not for this node #{certname.inspect}" unless cn == certname
        raise Error, "the certificate in the fact k3s_cluster_certificate expired at #{cert.not_after.utc}" if cert.not_after < Time.now
        cert
      end

      def seal(plaintext, cert)
        # PEM is ASCII: as UTF-8 it travels in catalogs as a plain String (not as Binary).
        OpenSSL::PKCS7.encrypt([cert], plaintext.to_s, OpenSSL::Cipher.new(CIPHER), OpenSSL::PKCS7::BINARY).to_pem.dup.force_encoding(Encoding::UTF_8)
      end

      def sealed?(text)
        text.is_a?(String) && PEM.match?(text)
      end

      # The plaintext, or nil when `sealed` was sealed to another certificate than `cert`.
      def open(sealed, key, cert)
        raise Error, 'not a sealed value (PKCS7 PEM expected)' unless sealed?(sealed)
        p7 = OpenSSL::PKCS7.new(sealed)
        return nil unless recipient?(p7, cert)
        p7.decrypt(key, cert).dup.force_encoding(Encoding::UTF_8)
      rescue OpenSSL::PKCS7::PKCS7Error => e
        raise Error, "cannot open the sealed value: #{e.message}"
      end

      def recipient?(p7, cert)
        p7.recipients.any? { |r| r.serial == cert.serial && r.issuer.to_s == cert.issuer.to_s }
      rescue NoMethodError
        true # an OpenSSL binding without RecipientInfo details: let decrypt decide
      end

      def read_key(path)
        OpenSSL::PKey.read(File.read(path))
      end

      def read_certificate(path)
        certificate(File.read(path), path)
      end
    end
  end
end
