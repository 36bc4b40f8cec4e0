# frozen_string_literal: true

require 'fileutils'
require 'yaml'

Puppet::Type.type(:k3s_cluster_info).provide(:ruby) do
  desc 'Keeps each record as a root-only (0600) YAML file in info_dir (a 0700 directory). `puppet resource ' \
       'k3s_cluster_info` lists the records in the default info_dir with their tokens redacted.'

  def self.redacted
    '[redacted]'
  end

  def self.default_dir
    '/etc/rancher/k3s/cluster-info'
  end

  def self.fields
    ['cluster_name', 'server_url', 'role', 'ca_hash', 'agent_token', 'server_token']
  end

  def self.token?(field)
    field.end_with?('_token')
  end

  # The records on this node, for `puppet resource` and purging. Tokens are never read into these
  # instances: they show as [redacted].
  def self.instances
    Dir.glob(File.join(default_dir, '*.yaml')).sort.map do |path|
      record = begin
        YAML.safe_load(File.read(path)) || {}
      rescue StandardError
        {}
      end
      shown = fields.each_with_object({}) do |f, h|
        next if record[f].nil?
        h[f.to_sym] = token?(f) ? redacted : record[f].to_s
      end
      new(shown.merge(name: File.basename(path, '.yaml'), ensure: :present, redacted: true))
    end
  end

  def path
    File.join(resource[:info_dir], "#{resource[:name]}.yaml")
  end

  def current
    @current ||= File.exist?(path) ? (YAML.safe_load(File.read(path)) || {}) : {}
  end

  def exists?
    return @property_hash[:ensure] == :present if @property_hash[:redacted]
    File.exist?(path)
  end

  def create
    @dirty = true
  end

  def destroy
    FileUtils.rm_f(path)
    @dirty = false
  end

  fields.each do |field|
    define_method(field) do
      return @property_hash.fetch(field.to_sym, :absent) if @property_hash[:redacted]
      current[field]
    end
    define_method("#{field}=") { |_value| @dirty = true }
  end

  def flush
    return unless @dirty
    record = {}
    self.class.fields.each do |field|
      value = resource[field.to_sym]
      record[field] = value.to_s unless value.nil?
    end
    FileUtils.mkdir_p(resource[:info_dir], mode: 0o700)
    File.chmod(0o700, resource[:info_dir])
    tmp = "#{path}.tmp"
    File.open(tmp, File::WRONLY | File::CREAT | File::TRUNC, 0o600) { |f| f.write(record.to_yaml) }
    File.chmod(0o600, tmp)
    File.rename(tmp, path)
    @current = record
  end
end
