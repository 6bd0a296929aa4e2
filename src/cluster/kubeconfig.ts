/**
 * The cluster a command talks to, found as kubectl finds it: `--kubeconfig`, else $KUBECONFIG,
 * else ~/.kube/config, else the in-cluster service account; `--context` picks a context.
 */
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(flags: { kubeconfig?: string; context?: string }): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (flags.kubeconfig !== undefined) kubeConfig.loadFromFile(flags.kubeconfig);
  else kubeConfig.loadFromDefault();
  if (flags.context !== undefined) {
    if (kubeConfig.getContextObject(flags.context) === null) throw new Error(`context "${flags.context}" not found in the kubeconfig`);
    kubeConfig.setCurrentContext(flags.context);
  }
  return kubeConfig;
}

/** The current context's namespace, else `default` (kubectl's rule). */
export function contextNamespace(kubeConfig: KubeConfig): string {
  return kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? 'default';
}
