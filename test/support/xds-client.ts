/**
 * Proxyless gRPC for the e2e suite: tiny `@grpc/grpc-js` echo backends that answer with their own
 * name, and `@grpc/grpc-js-xds` clients that let istiod's xDS (LDS/RDS/CDS/EDS) decide which
 * backend each RPC reaches. No Envoy, no Docker.
 *
 * The method is generic (raw buffers, no .proto): `/meshfork.e2e.Echo/Who` takes any bytes and
 * returns the UTF-8 name of the backend that served it.
 *
 * Bootstrap (per channel, not the process-wide GRPC_XDS_BOOTSTRAP): @grpc/grpc-js-xds 1.14 reads
 * the channel option `grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config` (a JSON string,
 * validated like a bootstrap file; build/src/resolver-xds.js) and gives that channel its own
 * XdsClient. `node.locality` is mandatory in its validator (xds-bootstrap.js validateNode). The
 * node id and metadata follow Istio's own proxyless test bootstrap
 * (pilot/pkg/networking/grpcgen/grpcgen_test.go GRPCBootstrap): id
 * `sidecar~<ip>~<app>.<ns>~<ns>.svc.cluster.local`, metadata GENERATOR=grpc (selects Istio's
 * grpcgen generator: model.Proxy.IsProxylessGrpc), NAMESPACE, CLUSTER_ID=Kubernetes.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { register as registerXds } from '@grpc/grpc-js-xds';

export const ECHO_METHOD = '/meshfork.e2e.Echo/Who';

const identity = (b: Buffer): Buffer => b;

const echoDefinition: grpc.ServiceDefinition = {
  Who: {
    path: ECHO_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** A plaintext echo backend on 127.0.0.1 answering every RPC with `name`. */
export interface EchoBackend {
  readonly name: string;
  readonly port: number;
  /** RPCs served so far. */
  readonly served: () => number;
  close(): Promise<void>;
}

export async function startEchoBackend(name: string): Promise<EchoBackend> {
  const server = new grpc.Server();
  let served = 0;
  server.addService(echoDefinition, {
    Who: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      served++;
      callback(null, Buffer.from(name, 'utf8'));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    name,
    port,
    served: () => served,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000).unref();
      }),
  };
}

export interface XdsBootstrapOptions {
  /** istiod's plaintext xDS address, `127.0.0.1:<port>`. */
  readonly xdsAddress: string;
  /** Namespace the client claims to run in (proxy metadata NAMESPACE). */
  readonly namespace: string;
  /** Workload name in the node id; istiod's /debug endpoints find the proxy as `<app>.<namespace>`. @default 'client' */
  readonly app?: string;
  /** Pod IP in the node id (any address: no Service selects the client). @default '10.255.0.1' */
  readonly ip?: string;
  /** @default 'Kubernetes' (istiod's default cluster id) */
  readonly clusterId?: string;
  /**
   * The client workload's labels (proxy metadata LABELS). istiod takes a proxy's labels from its
   * pod when it finds one by IP, else from this metadata (pilot/pkg/model/context.go
   * SetWorkloadLabels), and matches VirtualService `sourceLabels` against them.
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A gRPC xDS bootstrap for one client of istiod, as an object (JSON.stringify it for the option). */
export function xdsBootstrap(o: XdsBootstrapOptions): Record<string, unknown> {
  const app = o.app ?? 'client';
  const ip = o.ip ?? '10.255.0.1';
  return {
    xds_servers: [{ server_uri: o.xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: `sidecar~${ip}~${app}.${o.namespace}~${o.namespace}.svc.cluster.local`,
      locality: {},
      metadata: { GENERATOR: 'grpc', NAMESPACE: o.namespace, CLUSTER_ID: o.clusterId ?? 'Kubernetes', ...(o.labels ? { LABELS: { ...o.labels } } : {}) },
    },
  };
}

/** The istiod debug `proxyID` of a client built from {@link xdsBootstrap}. */
export function proxyIdOf(o: Pick<XdsBootstrapOptions, 'namespace' | 'app'>): string {
  return `${o.app ?? 'client'}.${o.namespace}`;
}

const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';
let registered = false;

/** Result of one RPC: the backend name, or the gRPC error. */
export type WhoResult = { ok: true; backend: string } | { ok: false; code: number; details: string };

export interface EchoClient {
  readonly target: string;
  /** One RPC with `metadata` (header name -> value; an array sends the header repeatedly). */
  who(metadata?: Readonly<Record<string, string | readonly string[]>>, deadlineMs?: number): Promise<WhoResult>;
  /** `n` sequential RPCs, counted by backend name (errors as `error:<code>`). */
  tally(n: number, metadata?: Readonly<Record<string, string | readonly string[]>>): Promise<Map<string, number>>;
  close(): void;
}

/**
 * A client of `xds:///<host>:<port>` whose channel gets its own XdsClient and ADS stream to
 * istiod (bootstrap passed per channel). Every channel gets a unique
 * `grpc.channel_id`-style option so grpc-js never shares a subchannel pool entry across tests.
 */
export function xdsEchoClient(target: string, bootstrap: Record<string, unknown>): EchoClient {
  if (!registered) {
    registerXds();
    registered = true;
  }
  const Ctor = grpc.makeGenericClientConstructor(echoDefinition, 'Echo');
  const client = new Ctor(target, grpc.credentials.createInsecure(), {
    [BOOTSTRAP_OPTION]: JSON.stringify(bootstrap),
    'meshfork.e2e.channel': randomBytes(4).toString('hex'),
  }) as unknown as grpc.Client & {
    Who: (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void;
  };
  const who: EchoClient['who'] = (metadata = {}, deadlineMs = 5_000) =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) {
        if (typeof v === 'string') md.add(k, v);
        else for (const one of v) md.add(k, one);
      }
      client.Who(Buffer.alloc(0), md, { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) resolve({ ok: false, code: err.code, details: err.details });
        else resolve({ ok: true, backend: (res ?? Buffer.alloc(0)).toString('utf8') });
      });
    });
  return {
    target,
    who,
    async tally(n, metadata = {}) {
      const counts = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const r = await who(metadata);
        const k = r.ok ? r.backend : `error:${r.code}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      return counts;
    },
    close: () => client.close(),
  };
}

/** `baggage` header value carrying routing key `key` under member name `keyName`. */
export function baggageFor(key: string, keyName = 'meshfork-routing-key'): string {
  return `${keyName}=${key}`;
}
