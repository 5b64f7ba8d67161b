// Which optional routes this server has, read from its own /openapi.json, so the console works
// against an older gateway and lights features up as the API grows (no hard-coded guesses).
import { useQuery } from "@tanstack/react-query";

interface Operation {
  requestBody?: { content?: Record<string, { schema?: { $ref?: string; properties?: Record<string, unknown> } }> };
}

interface OpenApi {
  paths?: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, { properties?: Record<string, unknown> }> };
}

export interface Capabilities {
  /** POST path template to ask for fresh hypotheses, e.g. /api/v1/incidents/{incident_id}/hypotheses/regenerate */
  regenerate: string | null;
  /** POST path template for a verdict on a hypothesis (may contain {rank}), and its body's fields. */
  feedback: string | null;
  feedbackFields: string[];
  /** Collection path of outgoing webhooks, and the deliveries path template of one webhook. */
  webhooks: string | null;
  webhookDeliveries: string | null;
  /** POST path template to send a delivery again. */
  webhookRetry: string | null;
  /** Resolving may record the root cause that was found. */
  rootCause: boolean;
}

export const NO_CAPABILITIES: Capabilities = {
  regenerate: null,
  feedback: null,
  feedbackFields: [],
  webhooks: null,
  webhookDeliveries: null,
  webhookRetry: null,
  rootCause: false,
};

function postPath(spec: OpenApi, test: (path: string) => boolean): string | null {
  for (const [path, ops] of Object.entries(spec.paths ?? {})) {
    if (ops.post && test(path)) return path;
  }
  return null;
}

function getPath(spec: OpenApi, test: (path: string) => boolean): string | null {
  for (const [path, ops] of Object.entries(spec.paths ?? {})) {
    if ((ops as Record<string, unknown>).get && test(path)) return path;
  }
  return null;
}

/** The property names of a POST's JSON body (following one $ref into components). */
function bodyFields(spec: OpenApi, path: string | null): string[] {
  if (!path) return [];
  const schema = spec.paths?.[path]?.post?.requestBody?.content?.["application/json"]?.schema;
  if (!schema) return [];
  if (schema.properties) return Object.keys(schema.properties);
  const name = schema.$ref?.split("/").pop();
  return Object.keys((name && spec.components?.schemas?.[name]?.properties) || {});
}

const HYPOTHESES = /^\/api\/v1\/incidents\/\{[^}]+\}\/hypotheses\//;

export function detectCapabilities(spec: OpenApi): Capabilities {
  const webhooks = getPath(spec, (p) => /^\/api\/v1\/integrations\/webhooks\/?$/.test(p));
  const feedback = postPath(spec, (p) => HYPOTHESES.test(p) && /feedback/.test(p));
  return {
    regenerate: postPath(spec, (p) => HYPOTHESES.test(p) && /regenerat/.test(p)),
    feedback,
    feedbackFields: bodyFields(spec, feedback),
    webhooks,
    webhookDeliveries: webhooks
      ? getPath(spec, (p) => /^\/api\/v1\/integrations\/webhooks\/\{[^}]+\}\/deliveries\/?$/.test(p))
      : null,
    webhookRetry: webhooks
      ? postPath(spec, (p) => /^\/api\/v1\/integrations\/webhooks\/\{[^}]+\}\/deliveries\/\{[^}]+\}\/retry$/.test(p))
      : null,
    // A move to `resolved` is its own schema since the API states which moves carry a root cause.
    rootCause: Boolean(
      spec.components?.schemas?.ResolutionCreate?.properties?.root_cause ??
      spec.components?.schemas?.TransitionCreate?.properties?.root_cause,
    ),
  };
}

/** Fills a path template: the first {placeholder} takes the first value, and so on. */
export function fillPath(template: string, ...values: (string | number)[]): string {
  let i = 0;
  return template.replace(/\{[^}]+\}/g, () => encodeURIComponent(String(values[i++] ?? "")));
}

export function useCapabilities(): Capabilities {
  const { data } = useQuery({
    queryKey: ["capabilities"],
    queryFn: async () => {
      const response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
      if (!response.ok) return NO_CAPABILITIES;
      return detectCapabilities((await response.json()) as OpenApi);
    },
    staleTime: 10 * 60_000,
    retry: 1,
  });
  return data ?? NO_CAPABILITIES;
}
