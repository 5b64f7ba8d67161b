// A schedule's form, to create one or edit one (admins): its name and its layers, each with its
// participants in order, rotation, handoff, time zone and restrictions. The browser checks what it
// can; the API's 422s show on the fields they name.
import { useState, type FormEvent } from "react";
import { usePeople, useUsers } from "../../api/hooks";
import type { ScheduleRead } from "../../api/types";
import { ROTATIONS, TIME_ZONES, WEEKDAYS } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { ErrorBox, Field } from "../../components/ui";
import { useSubmit } from "../../lib/useSubmit";
import {
  checkSchedule,
  draftToLayer,
  errorsByPath,
  layerToDraft,
  newLayer,
  type LayerDraft,
  type RestrictionDraft,
} from "../../lib/oncall";

function LayerEditor({
  index,
  layer,
  errors,
  onChange,
  onRemove,
}: {
  index: number;
  layer: LayerDraft;
  errors: Record<string, string>;
  onChange: (layer: LayerDraft) => void;
  onRemove: (() => void) | null;
}) {
  const users = useUsers();
  const person = usePeople();
  const at = (field: string) => errors[`layers.${index}.${field}`];
  const set = (patch: Partial<LayerDraft>) => onChange({ ...layer, ...patch });
  const candidates = (users.data ?? []).filter((u) => u.status !== "deactivated" && !layer.participants.includes(u.id));
  const setRestriction = (j: number, patch: Partial<RestrictionDraft>) =>
    set({ restrictions: layer.restrictions.map((r, k) => (k === j ? { ...r, ...patch } : r)) });
  const counted = layer.rotation === "hours" || layer.rotation === "days";
  const label = `Layer ${index + 1}`;

  return (
    <fieldset className="card layer" aria-label={label}>
      <legend>{label}</legend>
      <div className="form-row">
        <Field label="Layer name" error={at("name")} hint="Optional, e.g. Primary">
          {(p) => <input {...p} value={layer.name} maxLength={120} onChange={(e) => set({ name: e.target.value })} />}
        </Field>
        <Field label="Rotation" error={at("rotation")}>
          {(p) => (
            <select
              {...p}
              value={layer.rotation}
              onChange={(e) => set({ rotation: e.target.value as LayerDraft["rotation"] })}
            >
              {ROTATIONS.map((r) => (
                <option key={r} value={r}>
                  {r === "hours" ? "every N hours" : r === "days" ? "every N days" : r}
                </option>
              ))}
            </select>
          )}
        </Field>
        {counted ? (
          <Field label="Length" error={at("length")}>
            {(p) => (
              <input
                {...p}
                inputMode="numeric"
                value={layer.length}
                onChange={(e) => set({ length: e.target.value })}
              />
            )}
          </Field>
        ) : null}
      </div>
      <div className="form-row">
        <Field label="Starts on" error={at("start_date")}>
          {(p) => (
            <input {...p} type="date" value={layer.start_date} onChange={(e) => set({ start_date: e.target.value })} />
          )}
        </Field>
        <Field label="Handoff at" error={at("handoff_time")}>
          {(p) => (
            <input
              {...p}
              type="time"
              value={layer.handoff_time}
              onChange={(e) => set({ handoff_time: e.target.value })}
            />
          )}
        </Field>
        <Field label="Time zone" error={at("time_zone")}>
          {(p) => (
            <input
              {...p}
              list="oncall-time-zones"
              value={layer.time_zone}
              onChange={(e) => set({ time_zone: e.target.value })}
            />
          )}
        </Field>
      </div>
      <div className={`field ${at("participants") ? "has-error" : ""}`}>
        <span className="field-label">Participants, in order</span>
        <ol className="participants" aria-label={`${label} participants`}>
          {layer.participants.map((id, k) => (
            <li key={id}>
              {person(id)}{" "}
              <button
                type="button"
                className="btn btn-small btn-ghost"
                aria-label={`Remove ${person(id)}`}
                onClick={() => set({ participants: layer.participants.filter((_, n) => n !== k) })}
              >
                ×
              </button>
            </li>
          ))}
        </ol>
        <label className="inline-field">
          <span>Add participant</span>
          <select
            aria-label={`${label}: add participant`}
            value=""
            onChange={(e) => e.target.value && set({ participants: [...layer.participants, e.target.value] })}
          >
            <option value="">Choose someone…</option>
            {candidates.map((u) => (
              <option key={u.id} value={u.id}>
                {u.full_name}
              </option>
            ))}
          </select>
        </label>
        {at("participants") ? <div className="error-text">{at("participants")}</div> : null}
      </div>
      {layer.restrictions.map((r, j) => {
        const where = `restrictions.${j}`;
        return (
          <fieldset key={j} className="restriction" aria-label={`${label} restriction ${j + 1}`}>
            <legend>Only on</legend>
            <div className="chips">
              {WEEKDAYS.map((day) => (
                <label key={day} className={`chip ${r.days.includes(day) ? "on" : ""}`}>
                  <input
                    type="checkbox"
                    checked={r.days.includes(day)}
                    onChange={() =>
                      setRestriction(j, {
                        days: r.days.includes(day) ? r.days.filter((d) => d !== day) : [...r.days, day],
                      })
                    }
                  />
                  {day}
                </label>
              ))}
            </div>
            <div className="form-row">
              <Field label="From" error={at(`${where}.start`)}>
                {(p) => (
                  <input
                    {...p}
                    type="time"
                    value={r.start}
                    onChange={(e) => setRestriction(j, { start: e.target.value })}
                  />
                )}
              </Field>
              <Field label="Until" error={at(`${where}.end`)}>
                {(p) => (
                  <input
                    {...p}
                    type="time"
                    value={r.end}
                    onChange={(e) => setRestriction(j, { end: e.target.value })}
                  />
                )}
              </Field>
            </div>
            {at(`${where}.days`) || at(where) ? (
              <div className="error-text">{at(`${where}.days`) ?? at(where)}</div>
            ) : null}
            <button
              type="button"
              className="btn btn-small btn-ghost"
              onClick={() => set({ restrictions: layer.restrictions.filter((_, k) => k !== j) })}
            >
              Remove restriction
            </button>
          </fieldset>
        );
      })}
      <div className="form-actions">
        <button
          type="button"
          className="btn btn-small"
          onClick={() =>
            set({
              restrictions: [
                ...layer.restrictions,
                { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00" },
              ],
            })
          }
        >
          Add restriction
        </button>
        {onRemove ? (
          <button type="button" className="btn btn-small btn-danger" onClick={onRemove}>
            Remove layer
          </button>
        ) : null}
      </div>
    </fieldset>
  );
}

export function ScheduleForm({
  schedule,
  onSaved,
  onCancel,
}: {
  schedule?: ScheduleRead;
  onSaved: (saved: ScheduleRead) => void;
  onCancel?: () => void;
}) {
  const { api } = useAuth();
  const [name, setName] = useState(schedule?.name ?? "");
  const [description, setDescription] = useState(schedule?.description ?? "");
  const [layers, setLayers] = useState<LayerDraft[]>(schedule ? schedule.layers.map(layerToDraft) : [newLayer()]);
  // A 422 the fields show needs no second box; anything else (a 409: a deactivated person) does.
  const { busy, formError, fieldErrors: errors, setFieldErrors, run, reset } = useSubmit(errorsByPath);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found = checkSchedule(name, layers);
    reset();
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    const body = { name: name.trim(), description: description.trim(), layers: layers.map(draftToLayer) };
    await run(async () => {
      const saved = schedule
        ? await api.patch<ScheduleRead>(`/api/v1/schedules/${schedule.id}`, body)
        : await api.post<ScheduleRead>("/api/v1/schedules", body);
      if (!schedule) {
        setName("");
        setDescription("");
        setLayers([newLayer()]);
      }
      onSaved(saved);
    });
  };

  const title = schedule ? `Edit ${schedule.name}` : "New schedule";
  return (
    <form className="card form" onSubmit={submit} noValidate aria-label={title}>
      <h2>{title}</h2>
      <datalist id="oncall-time-zones">
        {TIME_ZONES.map((z) => (
          <option key={z} value={z} />
        ))}
      </datalist>
      <div className="form-row">
        <Field label="Name" error={errors.name}>
          {(p) => <input {...p} value={name} maxLength={120} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Description" error={errors.description}>
          {(p) => (
            <input {...p} value={description} maxLength={2000} onChange={(e) => setDescription(e.target.value)} />
          )}
        </Field>
      </div>
      <p className="muted small">Layers are listed bottom-up: where several have someone on call, the last one wins.</p>
      {layers.map((layer, i) => (
        <LayerEditor
          key={i}
          index={i}
          layer={layer}
          errors={errors}
          onChange={(next) => setLayers(layers.map((l, k) => (k === i ? next : l)))}
          onRemove={layers.length > 1 ? () => setLayers(layers.filter((_, k) => k !== i)) : null}
        />
      ))}
      {errors.layers ? <div className="error-text">{errors.layers}</div> : null}
      {formError ? <ErrorBox error={formError} /> : null}
      <div className="form-actions">
        <button type="button" className="btn" onClick={() => setLayers([...layers, newLayer()])}>
          Add layer
        </button>
        {onCancel ? (
          <button type="button" className="btn btn-ghost" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Saving…" : schedule ? "Save schedule" : "Create schedule"}
        </button>
      </div>
    </form>
  );
}
