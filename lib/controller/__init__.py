"""The charger controller side: the register-map interpreter (regmap: a controller's map as
data, decoded into the charger model) and the bridge (one task keeping the model and the
controller in step over a Modbus master). May import modbus, the charger model and the ground
floor (compat, log, jsonfile, check); imported by gateway only."""
