import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { detectCapabilities, fillPath, NO_CAPABILITIES } from "./capabilities";

describe("capabilities from /openapi.json", () => {
  it("finds the optional routes and the shape of their bodies", () => {
    const spec = {
      paths: {
        "/api/v1/incidents/{incident_id}/hypotheses/regenerate": { post: {} },
        "/api/v1/incidents/{incident_id}/hypotheses/{rank}/feedback": {
          post: {
            requestBody: {
              content: { "application/json": { schema: { $ref: "#/components/schemas/FeedbackCreate" } } },
            },
          },
        },
        "/api/v1/integrations/webhooks": { get: {}, post: {} },
        "/api/v1/integrations/webhooks/{webhook_id}/deliveries": { get: {} },
        "/api/v1/integrations/webhooks/{webhook_id}/deliveries/{delivery_id}/retry": { post: {} },
      },
      components: {
        schemas: {
          FeedbackCreate: { properties: { verdict: {}, comment: {}, generation: {} } },
          TransitionCreate: { properties: { to: {}, note: {}, root_cause: {} } },
        },
      },
    };
    expect(detectCapabilities(spec)).toEqual({
      regenerate: "/api/v1/incidents/{incident_id}/hypotheses/regenerate",
      feedback: "/api/v1/incidents/{incident_id}/hypotheses/{rank}/feedback",
      feedbackFields: ["verdict", "comment", "generation"],
      webhooks: "/api/v1/integrations/webhooks",
      webhookDeliveries: "/api/v1/integrations/webhooks/{webhook_id}/deliveries",
      webhookRetry: "/api/v1/integrations/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
      rootCause: true,
    });
  });

  it("finds every one of them in the gateway's own document (docs/openapi.json)", () => {
    // Vitest runs in web/.
    const spec = JSON.parse(readFileSync(resolve(process.cwd(), "../docs/openapi.json"), "utf8"));
    const found = detectCapabilities(spec);
    expect(Object.entries(found).filter(([, value]) => !value || (Array.isArray(value) && !value.length))).toEqual([]);
    expect(found.feedbackFields).toEqual(["verdict", "comment", "generation"]);
  });

  it("offers nothing an older gateway lacks", () => {
    expect(detectCapabilities({ paths: { "/api/v1/incidents/{incident_id}/hypotheses": { get: {} } } })).toEqual(
      NO_CAPABILITIES,
    );
  });

  it("fills path templates in order, escaping values", () => {
    expect(fillPath("/a/{x}/b/{y}/c", "1 2", 3)).toBe("/a/1%202/b/3/c");
  });
});
