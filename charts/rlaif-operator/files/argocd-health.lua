-- Argo CD health check for rlaif.dev PreferenceLabelJob, RewardModelRun, PolicyRLRun and RLAIFPipeline.
-- Install it for each kind as resource.customizations.health.rlaif.dev_<Kind> in argocd-cm
-- (examples/gitops/argocd-cm-health.yaml). It reads what `kubectl get` shows: status.phase, summed up
-- from status.conditions, and the reason of the condition that explains it.
--   Succeeded                     -> Healthy
--   Failed                        -> Degraded (InvalidSpec, BackoffLimitExceeded, StageFailed, ...)
--   waiting on a missing Secret   -> Degraded (nothing happens until someone creates it)
--   queued by Kueue               -> Suspended
--   anything else                 -> Progressing (waiting for an upstream stage, pending, running)
local hs = {status = "Progressing", message = "Waiting for the rlaif operator"}
local status = obj.status
if status == nil or status.phase == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.message = "The operator has not reconciled the latest spec yet"
  return hs
end

local function condition(ctype)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function say(c, default)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return (c.reason or "") .. ": " .. c.message
  end
  return status.message or default
end

if status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = status.message or "Succeeded"
  return hs
end
if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = say(condition("Failed"), "Failed")
  return hs
end
local inputs = condition("InputsReady")
if inputs ~= nil and inputs.status == "False" and (inputs.reason == "SecretNotFound" or inputs.reason == "SecretKeyNotFound") then
  hs.status = "Degraded"
  hs.message = say(inputs, "A Secret is missing")
  return hs
end
local running = condition("Running")
if running ~= nil and running.status == "False" and running.reason == "Queued" then
  hs.status = "Suspended"
  hs.message = say(running, "Queued")
  return hs
end
hs.message = say(running ~= nil and running.status == "True" and running or inputs, status.phase)
return hs
