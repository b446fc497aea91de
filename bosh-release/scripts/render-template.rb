#!/usr/bin/env ruby
# frozen_string_literal: true

# Renders the templates of one BOSH job the way the director does, for tests and for looking at what a deploy writes.
#
#   ruby render-template.rb JOB_DIR INPUT_YAML OUT_DIR
#
# INPUT_YAML holds what a deployment would give the job:
#
#   properties:            # the job's properties, as in a manifest (nested: {auth: {password: ...}})
#     auth: {password: a-long-password}
#   links:                 # the links the job consumes, by name
#     caas-broker:
#       job: caas-broker   # optional: a job of the same release whose spec defaults fill the link's properties
#       address: caas-broker.service.internal
#       properties: {port: 8443}
#   spec:                  # optional: what `spec` answers (name, id, index, az, address, ip, deployment, bootstrap)
#     address: 10.0.0.5
#
# Every template named in the job spec's `templates:` is rendered to OUT_DIR/<destination>. The template API is the
# part of bosh-template (the director's renderer) that releases use: p, if_p (with .else and .else_if_p), spec,
# link, if_link, and on a link p, if_p, address and instances. As on the director, a property takes the value given,
# else the spec's default, and p raises for a property that is neither given nor defaulted. Unlike the director, a
# given property that the spec does not declare is an error here, so that a typo in a test fails the test.

require 'erb'
require 'fileutils'
require 'json'
require 'ostruct'
require 'yaml'

module BoshTemplate
  # Raised for a property a template asks for that has neither a value nor a default.
  class UnknownProperty < StandardError
    def initialize(names)
      super("Can't find property '#{names.join("', or '")}'")
    end
  end

  # Raised for a link the job does not consume or the input does not give.
  class UnknownLink < StandardError
    def initialize(name)
      super("Can't find link '#{name}'")
    end
  end

  # Looks up a dotted name ("auth.password") in nested hashes; nil when any step is missing.
  def self.lookup(hash, name)
    name.split('.').reduce(hash) { |node, key| node.is_a?(Hash) ? node[key] : nil }
  end

  # The properties a job sees: for each property its spec declares, the given value or else the default, as nested
  # hashes (what the director calls raw_properties).
  def self.resolve(spec_properties, given)
    resolved = {}
    (spec_properties || {}).each do |name, definition|
      value = lookup(given, name)
      value = (definition || {})['default'] if value.nil?
      keys = name.split('.')
      keys[0..-2].reduce(resolved) { |node, key| node[key] ||= {} }[keys[-1]] = value
    end
    resolved
  end

  # Every dotted name in nested hashes that ends on a value ({a: {b: 1}} => ["a.b"]).
  def self.leaf_names(hash, prefix = nil)
    hash.flat_map do |key, value|
      name = [prefix, key].compact.join('.')
      value.is_a?(Hash) && !value.empty? ? leaf_names(value, name) : [name]
    end
  end

  # Shared by a job's context and a link: p and if_p over a set of resolved properties.
  module PropertyAccess
    def p(*args)
      names = Array(args[0])
      names.each do |name|
        value = BoshTemplate.lookup(@raw_properties, name)
        return value unless value.nil?
      end
      return args[1] if args.length == 2

      raise UnknownProperty, names
    end

    def if_p(*names)
      values = names.map do |name|
        value = BoshTemplate.lookup(@raw_properties, name)
        return ActiveElseBlock.new(self) if value.nil?

        value
      end
      yield(*values)
      InactiveElseBlock.new
    end
  end

  # What if_p returns when a property was missing: its else block runs.
  class ActiveElseBlock
    def initialize(context)
      @context = context
    end

    def else
      yield
    end

    def else_if_p(*names, &block)
      @context.if_p(*names, &block)
    end
  end

  # What if_p returns when its block ran: any else block is skipped.
  class InactiveElseBlock
    def else; end

    def else_if_p(*_names)
      InactiveElseBlock.new
    end
  end

  # A consumed link: its properties (the provider's, limited to those its spec shares), address and instances.
  class Link
    include PropertyAccess
    attr_reader :address, :instances

    def initialize(raw_properties, address, instances)
      @raw_properties = raw_properties
      @address = address
      @instances = instances.map { |instance| OpenStruct.new(instance) }
    end
  end

  # The object templates are evaluated in: `p`, `if_p`, `spec`, `link`, `if_link`.
  class Context
    include PropertyAccess
    attr_reader :spec, :name, :index, :raw_properties

    def initialize(job_spec, input, release_jobs_dir)
      declared = job_spec['properties'] || {}
      given = input['properties'] || {}
      undeclared = BoshTemplate.leaf_names(given).reject do |name|
        declared.key?(name) || declared.keys.any? { |d| name.start_with?("#{d}.") }
      end
      raise ArgumentError, "properties not declared in the #{job_spec['name']} job spec: #{undeclared.join(', ')}" \
        unless undeclared.empty?

      @name = job_spec['name']
      @raw_properties = BoshTemplate.resolve(declared, given)
      @index = 0
      @spec = OpenStruct.new(default_spec(job_spec).merge(input['spec'] || {}))
      @links = build_links(job_spec, input['links'] || {}, release_jobs_dir)
    end

    def link(name)
      @links.fetch(name) { raise UnknownLink, name }
    end

    def if_link(name)
      return ActiveElseBlock.new(self) unless @links.key?(name)

      yield @links[name]
      InactiveElseBlock.new
    end

    def get_binding # rubocop:disable Naming/AccessorMethodName
      binding
    end

    private

    def default_spec(job_spec)
      {
        'name' => job_spec['name'], 'job' => OpenStruct.new('name' => job_spec['name']),
        'id' => '00000000-0000-0000-0000-000000000000', 'index' => 0, 'az' => 'z1', 'bootstrap' => true,
        'deployment' => 'caas-broker', 'address' => '10.0.0.10', 'ip' => '10.0.0.10', 'networks' => OpenStruct.new
      }
    end

    def build_links(job_spec, given_links, release_jobs_dir)
      consumed = (job_spec['consumes'] || []).map { |c| c['name'] }
      given_links.each_with_object({}) do |(name, link), links|
        raise ArgumentError, "the #{job_spec['name']} job does not consume a link named #{name}" \
          unless consumed.include?(name)

        links[name] = Link.new(link_properties(name, link, release_jobs_dir), link['address'] || 'link.address',
                               link['instances'] || [{ 'address' => link['address'] || 'link.address' }])
      end
    end

    # With `job:`, what the director would share: that job's defaults and given properties, limited to the
    # properties its `provides` entry lists. Without, the given properties as they are.
    def link_properties(name, link, release_jobs_dir)
      given = link['properties'] || {}
      return given unless link['job']

      provider = YAML.safe_load(File.read(File.join(release_jobs_dir, link['job'], 'spec')))
      provides = (provider['provides'] || []).find { |p| p['name'] == name } ||
                 raise(ArgumentError, "the #{link['job']} job does not provide a link named #{name}")
      shared = (provider['properties'] || {}).slice(*(provides['properties'] || []))
      BoshTemplate.resolve(shared, given)
    end
  end

  def self.render(job_dir, input, out_dir)
    job_spec = YAML.safe_load(File.read(File.join(job_dir, 'spec')))
    context = Context.new(job_spec, input, File.dirname(File.expand_path(job_dir)))
    (job_spec['templates'] || {}).map do |source, destination|
      path = File.join(job_dir, 'templates', source)
      erb = ERB.new(File.read(path), trim_mode: '-')
      erb.filename = path
      begin
        text = erb.result(context.get_binding)
      rescue StandardError => e
        line = e.backtrace&.find { |l| l.start_with?("#{path}:") }&.split(':')&.at(1) || 'unknown'
        raise "Error filling in template '#{source}' for #{job_spec['name']}/0 (line #{line}: #{e.message})"
      end
      target = File.join(out_dir, destination)
      FileUtils.mkdir_p(File.dirname(target))
      File.write(target, text)
      target
    end
  end
end

if $PROGRAM_NAME == __FILE__
  unless ARGV.length == 3
    warn 'usage: render-template.rb JOB_DIR INPUT_YAML OUT_DIR'
    exit 2
  end
  job_dir, input_file, out_dir = ARGV
  begin
    input = YAML.safe_load(File.read(input_file)) || {}
    BoshTemplate.render(job_dir, input, out_dir).each { |file| puts file }
  rescue StandardError => e
    warn "render-template: #{e.message}"
    exit 1
  end
end
