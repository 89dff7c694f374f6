# refcocog (splitBy umd): refcoco.py with another REFER folder; evaluation on val
# (the umd test split via --cfg-options test_dataloader.dataset.split=test).
_base_ = ['./refcoco.py']
ref = dict(dataset='refcocog', split_by='umd')
train_dataloader = dict(dataset=ref)
val_dataloader = dict(dataset=ref)
test_dataloader = val_dataloader
