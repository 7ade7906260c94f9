export interface Quota {
  metric: "tokens" | "requests" | "cost_usd";
  period: "minute" | "hour" | "day" | "month";
  limit: number;
  used: number;
}

export function headroom(q: Quota, need: number): { after: number; trips: boolean } {
  const after = q.limit - q.used - need;
  return { after, trips: after < 0 };
}

export async function fetchQuotas(base: string, tenant: string): Promise<Quota[]> {
  const res = await fetch(`${base}/v1/quotas`, { headers: { "X-Musubi-Tenant": tenant } });
  if (!res.ok) {
    throw new Error(`quota request failed: ${res.status} ${res.statusText}`);
  }
  const body = (await res.json()) as { quotas: Quota[] };
  return body.quotas.filter((q) => q.limit > 0).sort((a, b) => a.limit - b.limit);
}
