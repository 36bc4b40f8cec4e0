# frozen_string_literal: true

require 'fileutils'
require 'yaml'

Puppet::Type.type(:k3s_cluster_info).provide(:ruby) do
  desc 'Keeps each collected record as a root-only (0600) YAML file in info_dir.'

  FIELDS = ['cluster_name', 'server_url', 'role', 'ca_hash', 'agent_token', 'server_token'].freeze

  def path
    File.join(resource[:info_dir], "#{resource[:name]}.yaml")
  end

  def current
    @current ||= File.exist?(path) ? (YAML.safe_load(File.read(path)) || {}) : {}
  end

  def exists?
    File.exist?(path)
  end

  def create
    @dirty = true
  end

  def destroy
    FileUtils.rm_f(path)
    @dirty = false
  end

  FIELDS.each do |field|
    define_method(field) { current[field] }
    define_method("#{field}=") { |_value| @dirty = true }
  end

  def flush
    return unless @dirty
    record = {}
    FIELDS.each do |field|
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
