// The configuration files the two JVM services need, written into the state dir. Debian's copies under
// /etc stay untouched; only the settings that differ from them are written here.

/** One plain log file per service, INFO and up (the packaged config logs to /var/log with rotation). */
export function logbackXml(logFile: string): string {
  return `<configuration>
  <appender name="F1" class="ch.qos.logback.core.FileAppender">
    <file>${logFile}</file>
    <append>true</append>
    <encoder><pattern>%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5p [%c{2}] %m%n</pattern></encoder>
  </appender>
  <logger name="org.eclipse.jetty" level="WARN"/>
  <logger name="puppetlabs.trapperkeeper.services.status.status-debug-logging" level="WARN"/>
  <root level="info"><appender-ref ref="F1"/></root>
</configuration>
`;
}

export interface ServerPaths {
  confDir: string; codeDir: string; varDir: string; runDir: string; logDir: string; ssldir: string;
  cadir: string; certname: string; serverIp: string; puppetdbUrl: string; logback: string;
}

/** `puppet.conf` of the server: PuppetDB as storeconfigs backend, every request autosigned. */
export function serverPuppetConf(p: ServerPaths): string {
  return `[main]
certname = ${p.certname}
server = ${p.certname}
ssldir = ${p.ssldir}
vardir = ${p.varDir}
logdir = ${p.logDir}
rundir = ${p.runDir}
codedir = ${p.codeDir}

[server]
cadir = ${p.cadir}
autosign = true
storeconfigs = true
storeconfigs_backend = puppetdb
reports = store,puppetdb
environment_timeout = 0
`;
}

export const routesYaml = `---
server:
  facts:
    terminus: puppetdb
    cache: yaml
`;

export function puppetdbConf(url: string): string {
  return `[main]
server_urls = ${url}
soft_write_failure = false
`;
}

/** The HOCON files puppetserver reads (`--config` dir). */
export function serverConfD(p: ServerPaths): Record<string, string> {
  return {
    "global.conf": `global: {\n  logging-config: ${p.logback}\n}\n`,
    "puppetserver.conf": `jruby-puppet: {
  ruby-load-path: [/usr/lib/puppetserver/ruby/vendor_ruby]
  gem-home: /var/lib/puppetserver/jruby-gems
  gem-path: [\${jruby-puppet.gem-home}, "/usr/lib/puppetserver/vendored-jruby-gems"]
  server-conf-dir: ${p.confDir}
  server-code-dir: ${p.codeDir}
  server-var-dir: ${p.varDir}
  server-run-dir: ${p.runDir}
  server-log-dir: ${p.logDir}
  max-active-instances: 1
}
http-client: {
}
profiler: {
}
`,
    // Only the test bridge's host address: the nodes reach it there, and so does the host itself.
    "webserver.conf": `webserver: {
  client-auth: want
  ssl-host: ${p.serverIp}
  ssl-port: 8140
  ssl-cert: ${p.ssldir}/certs/${p.certname}.pem
  ssl-key: ${p.ssldir}/private_keys/${p.certname}.pem
  ssl-ca-cert: ${p.ssldir}/certs/ca.pem
  ssl-crl-path: ${p.ssldir}/crl.pem
}
`,
  };
}

export interface PuppetdbPaths {
  varDir: string; logback: string; pgPort: number; pgPassword: string;
  /** Where PuppetDB's TLS API listens: loopback, reached by puppetserver only. */
  sslHost: string;
  sslKey: string; sslCert: string; sslCa: string; httpPort: number;
}

/** PuppetDB's `conf.d`: plain HTTP on loopback (the tests' queries) and TLS on `sslHost` (puppetserver's). */
export function puppetdbConfD(p: PuppetdbPaths): Record<string, string> {
  return {
    "config.ini": `[global]
vardir = ${p.varDir}
logging-config = ${p.logback}

[command-processing]
threads = 1
`,
    "database.ini": `[database]
subname = //127.0.0.1:${p.pgPort}/puppetdb
username = puppetdb
password = ${p.pgPassword}
`,
    "jetty.ini": `[jetty]
host = 127.0.0.1
port = ${p.httpPort}
ssl-host = ${p.sslHost}
ssl-port = 8081
ssl-key = ${p.sslKey}
ssl-cert = ${p.sslCert}
ssl-ca-cert = ${p.sslCa}
`,
    "repl.ini": "[nrepl]\nenabled = false\n",
  };
}
